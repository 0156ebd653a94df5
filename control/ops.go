package control

import (
	"context"
	"errors"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
	"github.com/thingtracker/ttn/view"
)

// Operations is what the CLI asks of a data dir. A running node serves it
// over the control channel (Client); without one, the CLI does it on the
// dir itself (Local), and what it appends is announced when a node next
// runs. Errors wrap the same sentinels either way.
type Operations interface {
	CreateTracker(ctx context.Context, info topics.TrackerInfo, update bool) (datadir.TrackerResult, error)
	Publish(ctx context.Context, tracker topics.TrackerID, things []topics.Thing, opts ...datadir.PublishOptions) ([]feed.Published, error)
	Import(ctx context.Context, doc *ttn.Document) (datadir.ImportResult, error)
	Retract(ctx context.Context, id topics.ID) (feed.Published, error)
	Ingest(ctx context.Context, envelopes [][]byte) (datadir.IngestResult, error)
	Entries(ctx context.Context, since uint64, limit int) ([]view.Entry, error)
	Status(ctx context.Context) (*view.Status, error)

	// Trust: see DESIGN.md, "Trust".
	Trust(ctx context.Context, subject string, level topics.TrustLevel, fingerprint, note string) (feed.Published, error)
	Flag(ctx context.Context, f topics.Flag) (feed.Published, error)
	SetProfile(ctx context.Context, p datadir.Profile) (feed.Published, error)
	Block(ctx context.Context, ids []string, blocked bool) error
	NodeDetail(ctx context.Context, id string) (*view.NodeDetail, error)
	Discovered(ctx context.Context) ([]view.Discovered, error)
	Dismiss(ctx context.Context, ids []string) error

	// Search runs a full-text search (without a node, on the dir's index,
	// caught up with the log first); Reindex rebuilds the index from the
	// log.
	Search(ctx context.Context, q view.SearchQuery) (*view.SearchResult, error)
	Reindex(ctx context.Context) error

	// Commit announces the commitment to a recovery key (the CLI makes
	// the key and shows its phrase; the phrase never reaches the node).
	Commit(ctx context.Context, commitment string) (feed.Published, error)
	// Rotate makes key, the recovery key the node committed to, its
	// signing key, committing to next ("" retires the identity); see
	// datadir.Dir.Rotate. The CLI derives key from the phrase: the phrase
	// never reaches the node.
	Rotate(ctx context.Context, key crypto.PrivKey, next, reason string) (datadir.Rotation, error)

	Close() error
}

var (
	_ Operations = Local{}
	_ Operations = (*Client)(nil)
)

// Local does the operations on a data dir this process opened.
type Local struct{ *datadir.Dir }

// Status reports the dir as stored.
func (l Local) Status(context.Context) (*view.Status, error) { return l.Dir.Status(nil) }

// Open returns a client of the node serving dir when one runs, and
// otherwise opens dir in this process.
func Open(dir string) (Operations, error) {
	c, err := Dial(context.Background(), dir)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, ErrNoNode) {
		return nil, err
	}
	d, err := datadir.Open(dir, feed.Config{})
	if err != nil {
		return nil, err
	}
	return Local{d}, nil
}
