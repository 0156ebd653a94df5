package node

import (
	"context"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
)

// api is the node as its NATS and HTTP APIs see it.
type api struct{ n *Node }

func (a api) Last() uint64                                  { return a.n.Log.Last() }
func (a api) Wait(ctx context.Context, cursor uint64) error { return a.n.Log.Wait(ctx, cursor) }
func (a api) Entries(cursor uint64, limit int) ([]topics.Entry, error) {
	return a.n.Log.Entries(cursor, limit)
}

// PublishResult is what a publish through an API did: one result per Thing.
type PublishResult struct {
	Published []feed.Published `json:"published"`
}

func (a api) Publish(ctx context.Context, tracker topics.TrackerID, things []topics.Thing) (any, error) {
	if err := a.n.waitOwnSynced(ctx); err != nil {
		return nil, err
	}
	ps, err := a.n.Publish(ctx, tracker, things)
	if err != nil {
		return nil, err
	}
	return PublishResult{ps}, nil
}

func (a api) Thing(ctx context.Context, tracker topics.TrackerID, id string) (any, error) {
	return a.n.Thing(ctx, tracker, id)
}

func (a api) Things(ctx context.Context, q topics.ThingsQuery) (*topics.ThingsPage, error) {
	return a.n.Things(ctx, q)
}

func (a api) Status(ctx context.Context) (any, error) { return a.n.Status(ctx) }
