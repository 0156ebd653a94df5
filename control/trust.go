package control

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// The trust operations, through a running node.

func (c *Client) Trust(ctx context.Context, subject string, level topics.TrustLevel, fingerprint, note string) (p feed.Published, err error) {
	t := &topics.Trust{Subject: subject, Level: level, Fingerprint: fingerprint, Note: note}
	err = c.call(ctx, &request{Op: OpTrust, Trust: t}, &p)
	return p, err
}

func (c *Client) Flag(ctx context.Context, f topics.Flag) (p feed.Published, err error) {
	err = c.call(ctx, &request{Op: OpFlag, Flag: &f}, &p)
	return p, err
}

func (c *Client) SetProfile(ctx context.Context, pr datadir.Profile) (p feed.Published, err error) {
	err = c.call(ctx, &request{Op: OpProfile, Profile: &pr}, &p)
	return p, err
}

func (c *Client) Block(ctx context.Context, ids []string, blocked bool) error {
	op := OpUnblock
	if blocked {
		op = OpBlock
	}
	return c.call(ctx, &request{Op: op, Nodes: ids}, nil)
}

func (c *Client) NodeDetail(ctx context.Context, id string) (d *view.NodeDetail, err error) {
	err = c.call(ctx, &request{Op: OpNode, Nodes: []string{id}}, &d)
	return d, err
}

func (c *Client) Discovered(ctx context.Context) (ds []view.Discovered, err error) {
	err = c.call(ctx, &request{Op: OpDiscovered}, &ds)
	return ds, err
}

func (c *Client) Dismiss(ctx context.Context, ids []string) error {
	return c.call(ctx, &request{Op: OpDismiss, Nodes: ids}, nil)
}

func (c *Client) Commit(ctx context.Context, commitment string) (p feed.Published, err error) {
	err = c.call(ctx, &request{Op: OpCommit, Commit: commitment}, &p)
	return p, err
}

func (c *Client) Rotate(ctx context.Context, key crypto.PrivKey, next, reason string) (r datadir.Rotation, err error) {
	b, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return r, err
	}
	err = c.call(ctx, &request{Op: OpRotate, Key: b, Commit: next, Reason: reason}, &r)
	return r, err
}

// The trust operations on the dir itself. What needs levels opens the
// dir's book (reading every standing record) for the one call.

func (l Local) Block(ctx context.Context, ids []string, blocked bool) error {
	b, err := l.OpenBook(ctx, 0)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := b.Block(id, blocked); err != nil {
			return err
		}
	}
	return nil
}

func (l Local) NodeDetail(ctx context.Context, id string) (*view.NodeDetail, error) {
	b, err := l.OpenBook(ctx, 0)
	if err != nil {
		return nil, err
	}
	return l.Dir.NodeDetail(ctx, b, id)
}

func (l Local) Discovered(ctx context.Context) ([]view.Discovered, error) {
	b, err := l.OpenBook(ctx, 0)
	if err != nil {
		return nil, err
	}
	d, err := datadir.OpenDiscoveries(l.Path)
	if err != nil {
		return nil, err
	}
	fs, err := datadir.LoadFollows(l.Path)
	if err != nil {
		return nil, err
	}
	return datadir.ViewDiscovered(d.List(fs.Has), b), nil
}

func (l Local) Dismiss(_ context.Context, ids []string) error {
	if err := datadir.CheckDismiss(ids); err != nil {
		return err
	}
	d, err := datadir.OpenDiscoveries(l.Path)
	if err != nil {
		return err
	}
	d.Dismiss(ids, time.Now())
	return d.Save()
}
