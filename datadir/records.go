package datadir

import (
	"context"
	"errors"
	"fmt"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
)

// What this node says on its node tracker: its node record (profile,
// trackers, follows), its trust records and its flags.

// ErrFingerprintMismatch is a trust record whose fingerprint is not its
// subject's: nothing is recorded.
var ErrFingerprintMismatch = errors.New("datadir: fingerprint does not match the subject")

// nodeInfo returns a copy of this node's latest node record, or, when it
// has none, a record listing its trackers.
func (c *Dir) nodeInfo() (*topics.NodeInfo, error) {
	st, err := c.Log.Tracker(c.ID.NodeTracker())
	if err != nil && !errors.Is(err, feed.ErrNotFound) {
		return nil, err
	}
	if err == nil && st.Info != nil {
		a, err := c.Log.Announcement(st.Info.Cursor)
		if err != nil {
			return nil, err
		}
		if a.Payload.NodeInfo != nil {
			return a.Payload.NodeInfo, nil // decoded for this call: ours to change
		}
	}
	own, err := c.OwnTrackers()
	if err != nil {
		return nil, err
	}
	return &topics.NodeInfo{Trackers: own}, nil
}

// publishNode publishes, after the drafts before and with them (all or
// none), a node record: the latest one changed by edit, so that what edit
// leaves alone (profile, trackers, follows, extensions) carries forward.
// It returns the outcomes, the node record's last. Call with c.publish
// held: two edits at once would each start from the same record.
func (c *Dir) publishNode(ctx context.Context, before []feed.Draft, edit func(*topics.NodeInfo)) ([]feed.Published, error) {
	info, err := c.nodeInfo()
	if err != nil {
		return nil, err
	}
	edit(info)
	drafts := append(before, feed.Draft{Tracker: c.ID.NodeTracker(), Kind: topics.KindNode, NodeInfo: info})
	return c.Log.Publish(ctx, c.ID.Signer(), drafts)
}

// Profile is what a node says of itself in its node record.
type Profile struct {
	Name        string `json:"name,omitempty"`        // one line
	Description string `json:"description,omitempty"` // may span lines
	URL         string `json:"url,omitempty"`
}

// SetProfile announces this node's profile (topics.NodeInfo's limits). The
// node record keeps its trackers and follows; an unchanged profile
// publishes nothing (New false).
func (c *Dir) SetProfile(ctx context.Context, p Profile) (feed.Published, error) {
	c.publish.Lock()
	defer c.publish.Unlock()
	ps, err := c.publishNode(ctx, nil, func(n *topics.NodeInfo) {
		n.Name, n.Description, n.URL = p.Name, p.Description, p.URL
	})
	if err != nil {
		return feed.Published{}, err
	}
	return ps[len(ps)-1], nil
}

// SetFollows announces what this node follows, in its node record, so that
// others may follow it too. Nil keeps them private: the record carries no
// follows (an empty Follows says the node follows nothing).
func (c *Dir) SetFollows(ctx context.Context, f *topics.Follows) (feed.Published, error) {
	if f != nil {
		cp := *f
		f = &cp
	}
	c.publish.Lock()
	defer c.publish.Unlock()
	ps, err := c.publishNode(ctx, nil, func(n *topics.NodeInfo) { n.Follows = f })
	if err != nil {
		return feed.Published{}, err
	}
	return ps[len(ps)-1], nil
}

// Trust announces what this node thinks of the node subject (its node ID,
// canonical). Level verified needs the subject's fingerprint, compared out
// of band; a fingerprint given with another level is checked as well, then
// left out of the record, which carries one with verified only. Level none
// withdraws this node's earlier record on subject. Nothing is recorded when
// the fingerprint is not the subject's (ErrFingerprintMismatch) or the
// record breaks its rules (topics.Trust.Check: a malformed subject, this
// node as subject, verified without a fingerprint). The same record as the
// standing one publishes nothing (New false).
func (c *Dir) Trust(ctx context.Context, subject string, level topics.TrustLevel, fingerprint, note string) (feed.Published, error) {
	if fingerprint != "" {
		raw, err := topics.ParseNodeID(subject)
		if err != nil {
			return feed.Published{}, fmt.Errorf("trust: subject: %w", err)
		}
		if fingerprint != topics.FingerprintOf(raw) {
			return feed.Published{}, fmt.Errorf("%w: %q is not the fingerprint of %s", ErrFingerprintMismatch, fingerprint, subject)
		}
		if level != topics.TrustVerified {
			fingerprint = ""
		}
	}
	t := &topics.Trust{Subject: subject, Level: level, Fingerprint: fingerprint, Note: note}
	return c.publishRecord(ctx, feed.Draft{Tracker: c.ID.NodeTracker(), Kind: topics.KindTrust, Trust: t})
}

// Flag announces a flag of this node (f.Withdraw takes its flag on
// f.Target back). The same flag as the standing one on that target
// publishes nothing (New false).
func (c *Dir) Flag(ctx context.Context, f topics.Flag) (feed.Published, error) {
	return c.publishRecord(ctx, feed.Draft{Tracker: c.ID.NodeTracker(), Kind: topics.KindFlag, Flag: &f})
}

// publishRecord publishes one trust record or flag.
func (c *Dir) publishRecord(ctx context.Context, d feed.Draft) (feed.Published, error) {
	c.publish.Lock()
	defer c.publish.Unlock()
	ps, err := c.Log.Publish(ctx, c.ID.Signer(), []feed.Draft{d})
	if err != nil {
		return feed.Published{}, err
	}
	return ps[0], nil
}
