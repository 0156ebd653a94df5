package view

import (
	"fmt"
	"unicode/utf8"

	"github.com/thingtracker/ttn/topics"
)

// Bounds of a search: a page holds at most MaxSearchLimit hits, and From
// reaches at most MaxSearchFrom hits deep.
const (
	DefaultSearchLimit = 20
	MaxSearchLimit     = 200
	MaxSearchFrom      = 10000
)

// SearchQuery is a full-text search over the Things a node holds (the
// latest version of each): GET /v1/search, ttn.api.search, `announcer
// search` and the search page all speak it. Empty fields select everything.
type SearchQuery struct {
	// Text is matched against titles, descriptions, tags, categories,
	// licences, the Things' authors, tracker and node names.
	Text string `json:"text,omitempty"`
	// Facet filters: a Thing passes when it carries the value (licence,
	// tag: one of its licences or tags, ignoring case; author: the node
	// ID that announced it; tracker: its tracker; trust: its author's
	// trust level here).
	Licence string           `json:"licence,omitempty"`
	Tag     string           `json:"tag,omitempty"`
	Author  string           `json:"author,omitempty"`
	Tracker topics.TrackerID `json:"tracker,omitzero"`
	Trust   string           `json:"trust,omitempty"`
	// Flagged includes flagged Things, which are left out by default.
	Flagged bool `json:"flagged,omitempty"`
	// From skips that many hits (paging); Limit is the most hits a page
	// holds: DefaultSearchLimit when 0, at most MaxSearchLimit.
	From  int `json:"from,omitempty"`
	Limit int `json:"limit,omitempty"`
}

// Check validates the query and fills in the default limit.
func (q *SearchQuery) Check() error {
	for _, f := range []struct{ name, v string }{{"text", q.Text}, {"licence", q.Licence}, {"tag", q.Tag}, {"trust", q.Trust}} {
		if len(f.v) > maxQueryText || !utf8.ValidString(f.v) {
			return fmt.Errorf("%s: at most %d bytes of UTF-8", f.name, maxQueryText)
		}
	}
	if q.Author != "" {
		if _, err := topics.NodeKey(q.Author); err != nil {
			return fmt.Errorf("author: %w", err)
		}
	}
	if q.From < 0 || q.From > MaxSearchFrom {
		return fmt.Errorf("from %d: want 0 to %d", q.From, MaxSearchFrom)
	}
	switch {
	case q.Limit < 0 || q.Limit > MaxSearchLimit:
		return fmt.Errorf("limit %d: want 1 to %d", q.Limit, MaxSearchLimit)
	case q.Limit == 0:
		q.Limit = DefaultSearchLimit
	}
	return nil
}

// SearchResult is a page of a search: the hits, best first, each the
// Thing's summary as a Things query shows it, and the facets of every
// Thing that matched (not only this page's).
type SearchResult struct {
	Total  uint64         `json:"total"` // Things that matched
	Hits   []ThingSummary `json:"hits"`
	Facets Facets         `json:"facets"`
	// Behind is how many log entries the index has yet to read: results
	// may miss the newest Things while it is not 0.
	Behind uint64 `json:"behind"`
}

// Facets count the matching Things by licence, tag, author, tracker and
// the author's trust level, most frequent first.
type Facets struct {
	Licence []FacetCount `json:"licence"`
	Tag     []FacetCount `json:"tag"`
	Author  []FacetCount `json:"author"`
	Tracker []FacetCount `json:"tracker"`
	Trust   []FacetCount `json:"trust"`
}

// FacetCount is one value of a facet and how many matching Things carry
// it. Name is a human name for the value where one is known (a tracker's
// or a node's name).
type FacetCount struct {
	Value string `json:"value"`
	Name  string `json:"name,omitempty"`
	Count int    `json:"count"`
}
