package node

import (
	"context"
	"errors"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
	"github.com/thingtracker/ttn/web"
)

// pages is the node as its pages see it: the HTTP API's reads, and the
// control channel's operations for the forms.
type pages struct{ api }

var _ web.Backend = pages{}

func (p pages) Tracker(ctx context.Context, id topics.TrackerID) (*web.Tracker, error) {
	n := p.n
	t := &web.Tracker{Tracker: view.Tracker{ID: id}, Followed: n.Followed(id)}
	st, err := n.Log.Tracker(id)
	switch {
	case errors.Is(err, view.ErrNotFound):
		// Not held: a tracker followed, or seen in a discovery record, has
		// a page all the same (to follow it from).
		if t.Followed {
			return t, nil
		}
		ds, _ := n.Discovered(ctx)
		for _, d := range ds {
			if d.Tracker == id {
				t.Owner, t.Title = d.Node, d.Title
				return t, nil
			}
		}
		return nil, err
	case err != nil:
		return nil, err
	}
	t.Owner, t.Name, t.Node, t.Own = st.Owner, st.Name, st.Node, st.Owner == n.ID.ID
	if t.Info, err = n.trackerInfo(st); err != nil {
		return nil, err
	}
	if t.Info != nil {
		t.Title = t.Info.Title
	}
	hs, err := n.Log.TrackerHeads(id)
	if err != nil {
		return nil, err
	}
	t.Heads = datadir.ViewHeads(hs)
	return t, nil
}

func (p pages) Follow(ctx context.Context, fs view.FollowSet) error   { return p.n.Follow(ctx, fs) }
func (p pages) Unfollow(ctx context.Context, fs view.FollowSet) error { return p.n.Unfollow(ctx, fs) }

func (p pages) Trust(ctx context.Context, subject string, level topics.TrustLevel, fingerprint, note string) error {
	_, err := p.n.Trust(ctx, subject, level, fingerprint, note)
	return err
}

func (p pages) Flag(ctx context.Context, f topics.Flag) error {
	_, err := controlHandler{p.n}.Flag(ctx, f)
	return err
}

func (p pages) Block(ctx context.Context, ids []string, blocked bool) error {
	return p.n.Block(ctx, ids, blocked)
}

func (p pages) Dismiss(ctx context.Context, ids []string) error { return p.n.Dismiss(ctx, ids) }
