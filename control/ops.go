package control

import (
	"context"
	"errors"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
)

// Operations is what the CLI asks of a data dir. A running node serves it
// over the control channel (Client); without one, the CLI does it on the
// dir itself (Local), and what it appends is announced when a node next
// runs. Errors wrap the same sentinels either way.
type Operations interface {
	CreateTracker(ctx context.Context, info topics.TrackerInfo, update bool) (datadir.TrackerResult, error)
	Publish(ctx context.Context, tracker topics.TrackerID, things []topics.Thing) ([]feed.Published, error)
	Import(ctx context.Context, doc *ttn.Document) (datadir.ImportResult, error)
	Retract(ctx context.Context, id topics.ID) (feed.Published, error)
	Ingest(ctx context.Context, envelopes [][]byte) (datadir.IngestResult, error)
	Entries(ctx context.Context, since uint64, limit int) ([]topics.Entry, error)
	Status(ctx context.Context) (*Status, error)
	Close() error
}

var (
	_ Operations = Local{}
	_ Operations = (*Client)(nil)
)

// Status is what a data dir, and the node running on it, report.
type Status struct {
	datadir.Status
	Running bool `json:"running"` // false: read from the dir, no node runs

	Addrs      []string `json:"addrs,omitempty"`
	GossipAddr string   `json:"gossip_addr,omitempty"`
	Control    string   `json:"control,omitempty"`

	Peers   int                  `json:"peers"`
	Members []gossip.Member      `json:"members,omitempty"`
	Events  []gossip.MemberEvent `json:"member_events,omitempty"`

	Following []topics.TrackerID `json:"following,omitempty"` // joined topics, own trackers included
	Known     int                `json:"known_trackers"`      // learnt from discovery records

	Net         gossip.Stats     `json:"net"`
	Sync        gossip.SyncStats `json:"sync"`
	SyncPending int              `json:"sync_pending"` // trackers waiting to be synced
	NATS        *natsapi.Stats   `json:"nats,omitempty"`
}

// Local does the operations on a data dir this process opened.
type Local struct{ *datadir.Dir }

// Status reports the dir as stored.
func (l Local) Status(context.Context) (*Status, error) {
	s, err := l.Dir.Status(nil)
	if err != nil {
		return nil, err
	}
	return &Status{Status: *s}, nil
}

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
