package node

import (
	"context"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/search"
	"github.com/thingtracker/ttn/view"
)

// Search runs a full-text search over the Things the node holds (see
// view.SearchQuery). It may be called concurrently.
func (n *Node) Search(ctx context.Context, q view.SearchQuery) (*view.SearchResult, error) {
	return n.searcher().Search(ctx, q)
}

func (n *Node) searcher() datadir.Searcher {
	return datadir.Searcher{Log: n.Log, Book: n.book, Index: n.index, Source: n.indexSrc}
}

// Reindex rebuilds the node's search index from its log; searches go on
// meanwhile, from the index being replaced.
func (n *Node) Reindex(ctx context.Context) error { return n.index.Reindex(ctx) }

// textThings answers a Things query with text from the index: its pages
// follow the index's order (by Thing key), each after the last of the
// previous.
func (n *Node) textThings(ctx context.Context, q view.ThingsQuery) (*view.ThingsPage, error) {
	sq := search.PageQuery{Text: q.Text, Tag: q.Tag, Author: q.Author, Tracker: q.Tracker, Flagged: q.Flagged, Limit: q.Limit}
	if tr, thing, ok, _ := q.AfterThing(); ok {
		sq.After = &search.ThingKey{Tracker: tr, Thing: thing}
	}
	res, err := n.index.Page(ctx, sq, datadir.Standing(n.book))
	if err != nil {
		return nil, err
	}
	page := &view.ThingsPage{}
	if page.Things, err = n.searcher().Describe(res.Hits); err != nil {
		return nil, err
	}
	if len(res.Hits) == q.Limit {
		last := res.Hits[len(res.Hits)-1]
		page.Next = view.PageToken(last.Tracker, last.Thing)
	}
	return page, nil
}
