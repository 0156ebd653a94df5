package search

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"strings"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/standard"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// Standing is what the caller knows at query time that the documents do
// not hold, because it changes without a log entry the index reads: the
// authors' trust levels and what is flagged.
type Standing struct {
	// Levels maps authors (node IDs) to their trust level; an author
	// absent from it is at level Unknown.
	Levels map[string]string
	// Unknown is the level of authors absent from Levels: "unknown" when
	// "".
	Unknown string
	// Flagged are the targets flagged now: a Thing under any of them is
	// left out of a search unless it asks for flagged Things.
	Flagged Flagged
}

// Flagged lists flagged targets by kind.
type Flagged struct {
	Things        []ThingKey
	Trackers      []topics.TrackerID
	Authors       []string // node IDs
	Announcements []topics.ID
}

// Result is a page of a search: the keys of its hits, best first (the
// caller describes them), the facets of every match and how far the index
// is behind the log.
type Result struct {
	Total  uint64
	Hits   []ThingKey
	Facets view.Facets
	Behind uint64
}

// Facet names of a search request.
const (
	facetLicence = "licence"
	facetTag     = "tag"
	facetAuthor  = "author"
	facetTracker = "tracker"
)

// titleBoost weighs a match in the title above one elsewhere.
const titleBoost = 2

// Search runs a query: q is checked (and its limit filled in); st supplies
// trust levels and flags. It may be called concurrently, while the index
// is fed.
func (ix *Index) Search(ctx context.Context, q view.SearchQuery, st Standing) (*Result, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	if st.Unknown == "" {
		st.Unknown = "unknown"
	}
	req := bleve.NewSearchRequestOptions(ix.query(q, st), q.Limit, q.From, false)
	req.SortBy([]string{"-_score", "_id"})
	req.AddFacet(facetLicence, bleve.NewFacetRequest(fieldLicence, ix.cfg.FacetSize))
	req.AddFacet(facetTag, bleve.NewFacetRequest(fieldTag, ix.cfg.FacetSize))
	req.AddFacet(facetTracker, bleve.NewFacetRequest(fieldTracker, ix.cfg.FacetSize))
	// Every author: the trust facet sums them by level.
	req.AddFacet(facetAuthor, bleve.NewFacetRequest(fieldAuthor, math.MaxInt32))
	return ix.run(ctx, req, st)
}

// run runs a request, and reads its hits and facets.
func (ix *Index) run(ctx context.Context, req *bleve.SearchRequest, st Standing) (*Result, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.idx == nil {
		return nil, ErrClosed
	}
	sr, err := ix.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, err
	}
	res := &Result{Total: sr.Total, Hits: make([]ThingKey, 0, len(sr.Hits)), Behind: ix.Behind()}
	for _, h := range sr.Hits {
		k, err := parseDocID(h.ID)
		if err != nil {
			return nil, err
		}
		res.Hits = append(res.Hits, k)
	}
	terms := func(name string) []view.FacetCount {
		out := []view.FacetCount{}
		if f := sr.Facets[name]; f != nil {
			for _, t := range f.Terms.Terms() {
				out = append(out, view.FacetCount{Value: t.Term, Count: t.Count})
			}
		}
		return out
	}
	authors := terms(facetAuthor)
	res.Facets = view.Facets{Licence: terms(facetLicence), Tag: terms(facetTag), Tracker: terms(facetTracker),
		Author: authors[:min(len(authors), ix.cfg.FacetSize)], Trust: trustFacet(authors, st)}
	return res, nil
}

// trustFacet counts the matches by their author's level: each Thing has
// one author, so the sums are exact.
func trustFacet(authors []view.FacetCount, st Standing) []view.FacetCount {
	byLevel := make(map[string]int)
	for _, a := range authors {
		byLevel[st.level(a.Value)] += a.Count
	}
	out := make([]view.FacetCount, 0, len(byLevel))
	for l, n := range byLevel {
		out = append(out, view.FacetCount{Value: l, Count: n})
	}
	slices.SortFunc(out, func(x, y view.FacetCount) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), strings.Compare(x.Value, y.Value))
	})
	return out
}

func (st Standing) level(author string) string {
	if l, ok := st.Levels[author]; ok && l != "" {
		return l
	}
	return st.Unknown
}

// query is the bleve query of a search: the text and the filters must
// match, a match in the title scores higher, and flagged Things are left
// out (by a MustNot clause, so the totals and facets leave them out too).
func (ix *Index) query(q view.SearchQuery, st Standing) query.Query {
	var must []query.Query
	var should query.Query
	if q.Text != "" {
		m := bleve.NewMatchQuery(q.Text)
		m.SetField(fieldText)
		m.Analyzer = standard.Name
		m.SetOperator(query.MatchQueryOperatorAnd)
		must = append(must, m)
		t := bleve.NewMatchQuery(q.Text)
		t.SetField(fieldTitle)
		t.Analyzer = standard.Name
		t.SetBoost(titleBoost)
		should = t
	}
	term := func(field, v string) query.Query {
		t := bleve.NewTermQuery(v)
		t.SetField(field)
		return t
	}
	if q.Licence != "" {
		must = append(must, term(fieldLicence, strings.ToLower(q.Licence)))
	}
	if q.Tag != "" {
		must = append(must, term(fieldTag, strings.ToLower(q.Tag)))
	}
	if q.Author != "" {
		must = append(must, term(fieldAuthor, q.Author))
	}
	if !q.Tracker.IsZero() {
		must = append(must, term(fieldTracker, q.Tracker.String()))
	}
	var not []query.Query
	if q.Trust != "" {
		// The authors at that level; for the level of authors nobody
		// placed, every author but those at another level.
		var at, other []query.Query
		for a := range st.Levels {
			if st.level(a) == q.Trust {
				at = append(at, term(fieldAuthor, a))
			} else {
				other = append(other, term(fieldAuthor, a))
			}
		}
		switch {
		case q.Trust == st.Unknown:
			not = append(not, other...)
		case len(at) == 0:
			must = append(must, bleve.NewMatchNoneQuery())
		default:
			must = append(must, bleve.NewDisjunctionQuery(at...))
		}
	}
	if !q.Flagged {
		f := st.Flagged
		if len(f.Things) > 0 {
			ids := make([]string, len(f.Things))
			for i, k := range f.Things {
				ids[i] = k.docID()
			}
			not = append(not, bleve.NewDocIDQuery(ids))
		}
		for _, t := range f.Trackers {
			not = append(not, term(fieldTracker, t.String()))
		}
		for _, a := range f.Authors {
			not = append(not, term(fieldAuthor, a))
		}
		for _, id := range f.Announcements {
			not = append(not, term(fieldAnnouncement, id.String()))
		}
	}
	if len(must) == 0 {
		must = append(must, bleve.NewMatchAllQuery())
	}
	b := bleve.NewBooleanQuery()
	b.AddMust(must...)
	if should != nil {
		b.AddShould(should)
	}
	if len(not) > 0 {
		b.AddMustNot(not...)
	}
	return b
}

// PageQuery selects Things as a Things query does (view.ThingsQuery), in
// pages in the order of their keys, each after the last of the previous.
type PageQuery struct {
	Text    string
	Tag     string
	Author  string
	Tracker topics.TrackerID
	Flagged bool
	// After is the last Thing of the previous page; nil for the first.
	After *ThingKey
	// Limit is the most Things a page holds.
	Limit int
}

// Page returns a page of the Things a PageQuery selects: its hits, and
// its total; no facets.
func (ix *Index) Page(ctx context.Context, q PageQuery, st Standing) (*Result, error) {
	if q.Limit <= 0 {
		return nil, errors.New("search: a page needs a limit")
	}
	if st.Unknown == "" {
		st.Unknown = "unknown"
	}
	sq := view.SearchQuery{Text: q.Text, Tag: q.Tag, Author: q.Author, Tracker: q.Tracker, Flagged: q.Flagged}
	req := bleve.NewSearchRequestOptions(ix.query(sq, st), q.Limit, 0, false)
	req.SortBy([]string{"_id"})
	if q.After != nil {
		req.SearchAfter = []string{q.After.docID()}
	}
	return ix.run(ctx, req, st)
}
