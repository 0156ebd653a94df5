package control

import (
	"context"

	"github.com/thingtracker/ttn/view"
)

func (c *Client) Search(ctx context.Context, q view.SearchQuery) (r *view.SearchResult, err error) {
	err = c.call(ctx, &request{Op: OpSearch, Search: &q}, &r)
	return r, err
}

func (c *Client) Reindex(ctx context.Context) error {
	return c.call(ctx, &request{Op: OpReindex}, nil)
}

// Search opens the dir's index, reads what the log holds past its cursor,
// and searches it.
func (l Local) Search(ctx context.Context, q view.SearchQuery) (*view.SearchResult, error) {
	return l.Dir.SearchOffline(ctx, 0, q)
}

// Reindex rebuilds the dir's index from its log.
func (l Local) Reindex(ctx context.Context) error {
	_, err := l.Dir.ReindexOffline(ctx)
	return err
}
