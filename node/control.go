package node

import (
	"context"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/control"
	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
	"github.com/thingtracker/ttn/view"
)

// controlHandler is the node as its control channel serves it. What writes
// to the node's own chains waits until the node knows its own heads from
// its peers (a restored dir must not reuse a seq).
type controlHandler struct{ n *Node }

var _ control.Handler = controlHandler{}

func (h controlHandler) CreateTracker(ctx context.Context, info topics.TrackerInfo, update bool) (datadir.TrackerResult, error) {
	if err := h.n.waitOwnSynced(ctx); err != nil {
		return datadir.TrackerResult{}, err
	}
	return h.n.CreateTracker(ctx, info, update)
}

func (h controlHandler) Publish(ctx context.Context, tracker topics.TrackerID, things []topics.Thing, opts ...datadir.PublishOptions) ([]feed.Published, error) {
	if err := h.n.waitOwnSynced(ctx); err != nil {
		return nil, err
	}
	return h.n.Publish(ctx, tracker, things, opts...)
}

func (h controlHandler) Import(ctx context.Context, doc *ttn.Document) (datadir.ImportResult, error) {
	if err := h.n.waitOwnSynced(ctx); err != nil {
		return datadir.ImportResult{}, err
	}
	return h.n.Import(ctx, doc)
}

func (h controlHandler) Retract(ctx context.Context, id topics.ID) (feed.Published, error) {
	if err := h.n.waitOwnSynced(ctx); err != nil {
		return feed.Published{}, err
	}
	return h.n.Retract(ctx, id)
}

func (h controlHandler) Ingest(ctx context.Context, envelopes [][]byte) (datadir.IngestResult, error) {
	return h.n.Ingest(ctx, envelopes)
}

func (h controlHandler) Entries(ctx context.Context, since uint64, limit int) ([]view.Entry, error) {
	es, err := h.n.Entries(ctx, since, limit)
	return h.n.withTrust(es), err
}

func (h controlHandler) Status(ctx context.Context) (*view.Status, error) { return h.n.Status(ctx) }

func (h controlHandler) Follow(ctx context.Context, fs datadir.FollowSet) error {
	return h.n.Follow(ctx, fs)
}

func (h controlHandler) Unfollow(ctx context.Context, fs datadir.FollowSet) error {
	return h.n.Unfollow(ctx, fs)
}

func (h controlHandler) Follows(context.Context) (datadir.FollowSet, error) {
	return h.n.follows.Get(), nil
}

func (h controlHandler) Trust(ctx context.Context, subject string, level topics.TrustLevel, fingerprint, note string) (feed.Published, error) {
	return h.n.Trust(ctx, subject, level, fingerprint, note)
}

func (h controlHandler) Flag(ctx context.Context, f topics.Flag) (feed.Published, error) {
	if err := h.n.waitOwnSynced(ctx); err != nil {
		return feed.Published{}, err
	}
	return h.n.Flag(ctx, f)
}

func (h controlHandler) SetProfile(ctx context.Context, p datadir.Profile) (feed.Published, error) {
	if err := h.n.waitOwnSynced(ctx); err != nil {
		return feed.Published{}, err
	}
	return h.n.SetProfile(ctx, p)
}

func (h controlHandler) Block(ctx context.Context, ids []string, blocked bool) error {
	return h.n.Block(ctx, ids, blocked)
}

func (h controlHandler) NodeDetail(ctx context.Context, id string) (*view.NodeDetail, error) {
	return h.n.NodeDetail(ctx, id)
}

func (h controlHandler) Discovered(ctx context.Context) ([]view.Discovered, error) {
	return h.n.Discovered(ctx)
}

func (h controlHandler) Commit(ctx context.Context, commitment string) (feed.Published, error) {
	if err := h.n.waitOwnSynced(ctx); err != nil {
		return feed.Published{}, err
	}
	return h.n.Commit(ctx, commitment)
}

func (h controlHandler) Dismiss(ctx context.Context, ids []string) error {
	return h.n.Dismiss(ctx, ids)
}

// Close is not the channel's to call: the node closes itself.
func (h controlHandler) Close() error { return nil }

func (h controlHandler) Stream(ctx context.Context, since uint64, followed bool, send func(*view.Entry) error) error {
	r := h.n.Log.NewReader(since)
	for {
		e, err := r.Next(ctx)
		if err != nil {
			return err
		}
		e.Trust = h.n.TrustLevel(e.Author)
		if !followed || h.n.Followed(e.Tracker) {
			if err := send(&e); err != nil {
				return err
			}
		}
	}
}

// Rotate rotates the node's signing key (datadir.Dir.Rotate) once the node
// knows its own heads from its peers, so that the rotation vouches for all
// it published. The running node signs with the new key at once; its
// libp2p identity becomes the new key when it next starts.
func (h controlHandler) Rotate(ctx context.Context, key crypto.PrivKey, next, reason string) (datadir.Rotation, error) {
	if err := h.n.waitOwnSynced(ctx); err != nil {
		return datadir.Rotation{}, err
	}
	return h.n.Rotate(ctx, key, next, reason)
}

func (h controlHandler) Search(ctx context.Context, q view.SearchQuery) (*view.SearchResult, error) {
	return h.n.Search(ctx, q)
}

func (h controlHandler) Reindex(ctx context.Context) error { return h.n.Reindex(ctx) }
