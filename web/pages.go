package web

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// Bounds of the pages.
const (
	feedItems     = 50   // Things on the feed page
	feedScan      = 5000 // log entries the feed page reads back, at most
	trackersPage  = 100
	thingsPage    = 100
	parentChoices = 200 // Things offered as parents on the publish form
)

// FeedItem is one Thing announcement on the feed page.
type FeedItem struct {
	Cursor      uint64
	Tracker     topics.TrackerID
	TrackerName string // its title or name, "" when unknown
	Author      string
	Trust       string
	Time        string
	Thing       *topics.Thing
}

// FeedPage is the live feed: the newest Thing announcements that pass the
// filters, and the cursor the live updates continue from.
type FeedPage struct {
	Items                []FeedItem
	Last                 uint64
	Tracker, Tag, Author string
}

func (FeedPage) title() string { return "Live feed" }

func (p *Pages) feed(r *http.Request) (string, any, error) {
	q := r.URL.Query()
	page := &FeedPage{Last: p.b.Last(), Tag: q.Get("tag"), Author: q.Get("author")}
	var tracker topics.TrackerID
	if t := q.Get("tracker"); t != "" {
		var err error
		if tracker, err = topics.ParseTrackerID(t); err != nil {
			return "", nil, badRequest(err.Error())
		}
		page.Tracker = t
	}
	names := map[topics.TrackerID]string{}
	// Read the log back in windows until the page is full.
	for end := page.Last; end > 0 && page.Last-end < feedScan && len(page.Items) < feedItems; {
		from := end - min(end, 500)
		es, err := p.b.Entries(from, int(end-from))
		if err != nil {
			return "", nil, err
		}
		for i := len(es) - 1; i >= 0 && len(page.Items) < feedItems; i-- {
			e := &es[i]
			if e.Void || e.Kind != topics.KindThing || (!tracker.IsZero() && e.Tracker != tracker) || (page.Author != "" && e.Author != page.Author) {
				continue
			}
			pl, err := topics.ParsePayload(e.Announcement)
			if err != nil || pl.Thing == nil {
				continue
			}
			if page.Tag != "" && !slices.ContainsFunc(pl.Thing.Tags, func(t string) bool { return strings.EqualFold(t, page.Tag) }) {
				continue
			}
			name, ok := names[e.Tracker]
			if !ok {
				if t, err := p.b.Tracker(r.Context(), e.Tracker); err == nil {
					name = cmp.Or(t.Title, t.Name)
				}
				names[e.Tracker] = name
			}
			page.Items = append(page.Items, FeedItem{Cursor: e.Cursor, Tracker: e.Tracker, TrackerName: name, Author: e.Author, Trust: e.Trust, Time: pl.Time, Thing: pl.Thing})
		}
		end = from
	}
	return "feed", page, nil
}

// TrackersPage lists the trackers the node holds.
type TrackersPage struct{ *view.TrackersPage }

func (TrackersPage) title() string { return "Trackers" }

func (p *Pages) trackers(r *http.Request) (string, any, error) {
	var after *topics.TrackerID
	if a := r.URL.Query().Get("after"); a != "" {
		t, err := topics.ParseTrackerID(a)
		if err != nil {
			return "", nil, badRequest(err.Error())
		}
		after = &t
	}
	tp, err := p.b.Trackers(r.Context(), after, trackersPage)
	if err != nil {
		return "", nil, err
	}
	return "trackers", TrackersPage{TrackersPage: tp}, nil
}

// TrackerPage is one tracker and a page of its Things.
type TrackerPage struct {
	*Tracker
	Things *view.ThingsPage
}

func (t TrackerPage) title() string {
	if t.Info != nil && t.Info.Title != "" {
		return t.Info.Title
	}
	if t.Name != "" {
		return t.Name
	}
	return "Node tracker of " + short(t.Owner)
}

func (p *Pages) tracker(r *http.Request) (string, any, error) {
	id, err := topics.ParseTrackerID(r.PathValue("id"))
	if err != nil {
		return "", nil, badRequest(err.Error())
	}
	t, err := p.b.Tracker(r.Context(), id)
	if err != nil {
		return "", nil, err
	}
	tq := view.ThingsQuery{Tracker: id, Limit: thingsPage, After: r.URL.Query().Get("after"), Flagged: r.URL.Query().Get("flagged") == "1"}
	if err := tq.Check(); err != nil {
		return "", nil, badRequest(err.Error())
	}
	things, err := p.b.Things(r.Context(), tq)
	if err != nil {
		return "", nil, err
	}
	return "tracker", TrackerPage{Tracker: t, Things: things}, nil
}

// ThingPage is a Thing with its history, its ancestry drawn, and its
// author.
type ThingPage struct {
	*view.Thing
	Ancestry *view.Ancestry
	Graph    *Graph
	Maker    *view.NodeDetail // the author, as this node knows it
	Current  *view.Version    // the latest version shown, nil when all are retracted
}

func (t ThingPage) title() string {
	if t.Current != nil && t.Current.Thing.Title != "" {
		return t.Current.Thing.Title
	}
	return t.ID
}

func (p *Pages) thing(r *http.Request) (string, any, error) {
	tracker, err := topics.ParseTrackerID(r.PathValue("tracker"))
	if err != nil {
		return "", nil, badRequest(err.Error())
	}
	id := r.PathValue("thing")
	t, err := p.b.Thing(r.Context(), tracker, id)
	if err != nil {
		return "", nil, err
	}
	a, err := p.b.Ancestry(r.Context(), tracker, id)
	if err != nil {
		return "", nil, err
	}
	page := ThingPage{Thing: t, Ancestry: a, Graph: drawAncestry(a, t)}
	for i := len(t.Versions) - 1; i >= 0; i-- {
		if t.Versions[i].Version == t.Latest {
			page.Current = &t.Versions[i]
			break
		}
	}
	if t.Author != "" {
		if page.Maker, err = p.b.NodeDetail(r.Context(), t.Author); err != nil && !errors.Is(err, view.ErrNotFound) {
			return "", nil, err
		}
	}
	return "thing", page, nil
}

// NodePage is what the node holds about a node.
type NodePage struct{ *view.NodeDetail }

func (n NodePage) title() string {
	if n.Name != "" {
		return n.Name
	}
	return "Node " + short(n.ID)
}

func (p *Pages) node(r *http.Request) (string, any, error) {
	id := r.PathValue("id")
	if _, err := topics.NodeKey(id); err != nil {
		return "", nil, badRequest(err.Error())
	}
	d, err := p.b.NodeDetail(r.Context(), id)
	if err != nil {
		return "", nil, err
	}
	return "node", NodePage{d}, nil
}

// SearchPage is a search and its results.
type SearchPage struct {
	Query  view.SearchQuery
	Result *view.SearchResult
	Next   string // the URL of the next page, "" at the end
	Prev   string
}

func (SearchPage) title() string { return "Search" }

func (p *Pages) search(r *http.Request) (string, any, error) {
	v := r.URL.Query()
	q := view.SearchQuery{Text: v.Get("q"), Licence: v.Get("licence"), Tag: v.Get("tag"), Author: v.Get("author"), Trust: v.Get("trust"), Flagged: v.Get("flagged") == "1"}
	if t := v.Get("tracker"); t != "" {
		var err error
		if q.Tracker, err = topics.ParseTrackerID(t); err != nil {
			return "", nil, badRequest(err.Error())
		}
	}
	if f := v.Get("from"); f != "" {
		var err error
		if q.From, err = strconv.Atoi(f); err != nil {
			return "", nil, badRequest("from: want a whole number")
		}
	}
	if err := q.Check(); err != nil {
		return "", nil, badRequest(err.Error())
	}
	page := &SearchPage{Query: q}
	if p.cfg.Search == nil {
		return "search", page, nil
	}
	res, err := p.cfg.Search.Search(r.Context(), q)
	if err != nil {
		return "", nil, err
	}
	page.Result = res
	link := func(from int) string {
		u := *r.URL
		vals := u.Query()
		vals.Set("from", strconv.Itoa(from))
		u.RawQuery = vals.Encode()
		return u.RequestURI()
	}
	if uint64(q.From+q.Limit) < res.Total && q.From+q.Limit <= view.MaxSearchFrom {
		page.Next = link(q.From + q.Limit)
	}
	if q.From > 0 {
		page.Prev = link(max(0, q.From-q.Limit))
	}
	return "search", page, nil
}

// DiscoveredPage is the review list.
type DiscoveredPage struct{ Discovered []view.Discovered }

func (DiscoveredPage) title() string { return "Discovered" }

func (p *Pages) discovered(r *http.Request) (string, any, error) {
	d, err := p.b.Discovered(r.Context())
	if err != nil {
		return "", nil, err
	}
	return "discovered", DiscoveredPage{d}, nil
}

// StatusPage is the node's status.
type StatusPage struct{ *view.Status }

func (StatusPage) title() string { return "Status" }

func (p *Pages) status(r *http.Request) (string, any, error) {
	st, err := p.b.Status(r.Context())
	if err != nil {
		return "", nil, err
	}
	return "status", StatusPage{st}, nil
}

// PublishPage is the form to publish a Thing or a new version.
type PublishPage struct {
	Trackers []view.Tracker // the node's own
	Tracker  topics.TrackerID
	Thing    topics.Thing // prefilled: a new version of a Thing
	Parents  []ParentChoice
}

// ParentChoice is a Thing version the form offers as a parent.
type ParentChoice struct {
	Value, Label string
	Selected     bool
}

func (PublishPage) title() string { return "Publish" }

func (p *Pages) publishForm(r *http.Request) (string, any, error) {
	if !p.cfg.Actions {
		return "", nil, &pageError{http.StatusForbidden, "publishing from a page needs a loopback listener"}
	}
	st, err := p.b.Status(r.Context())
	if err != nil {
		return "", nil, err
	}
	page := &PublishPage{}
	for after := (*topics.TrackerID)(nil); ; {
		tp, err := p.b.Trackers(r.Context(), after, 500)
		if err != nil {
			return "", nil, err
		}
		for _, t := range tp.Trackers {
			if t.Owner == st.Node && !t.Node {
				page.Trackers = append(page.Trackers, t)
			}
		}
		if tp.Next == "" || len(tp.Trackers) == 0 {
			break
		}
		after = &tp.Trackers[len(tp.Trackers)-1].ID
	}
	q := r.URL.Query()
	selected := q["parent"]
	if t := q.Get("tracker"); t != "" {
		if page.Tracker, err = topics.ParseTrackerID(t); err != nil {
			return "", nil, badRequest(err.Error())
		}
		if id := q.Get("thing"); id != "" { // a new version: start from the latest
			th, err := p.b.Thing(r.Context(), page.Tracker, id)
			if err != nil {
				return "", nil, err
			}
			for _, v := range th.Versions {
				if v.Version == th.Latest {
					page.Thing = *v.Thing
				}
			}
			page.Thing.Version = ""
		}
	}
	things, err := p.b.Things(r.Context(), view.ThingsQuery{Limit: parentChoices})
	if err != nil {
		return "", nil, err
	}
	for _, s := range things.Things {
		v := parentValue(topics.Parent{Tracker: s.Tracker, Thing: s.ID, Version: s.Version})
		page.Parents = append(page.Parents, ParentChoice{Value: v, Label: fmt.Sprintf("%s %s (%s)", s.Thing.Title, s.Version, short(s.Tracker)), Selected: slices.Contains(selected, v)})
	}
	return "publish", page, nil
}

// parentValue and parseParent write and read a parent as a form value:
// TRACKER/THING@VERSION.
func parentValue(p topics.Parent) string {
	return p.Tracker.String() + "/" + p.Thing + "@" + p.Version
}

func parseParent(s string) (topics.Parent, error) {
	tr, rest, ok := strings.Cut(s, "/")
	if !ok {
		return topics.Parent{}, fmt.Errorf("parent %q: want TRACKER/THING@VERSION", s)
	}
	t, err := topics.ParseTrackerID(tr)
	if err != nil {
		return topics.Parent{}, fmt.Errorf("parent %q: %w", s, err)
	}
	thing, version := rest, ""
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		thing, version = rest[:i], rest[i+1:]
	}
	if thing == "" {
		return topics.Parent{}, fmt.Errorf("parent %q: no Thing", s)
	}
	return topics.Parent{Tracker: t, Thing: thing, Version: version}, nil
}
