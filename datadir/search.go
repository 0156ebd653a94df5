package datadir

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/search"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/trust"
	"github.com/thingtracker/ttn/view"
)

// LogSource is the search index's Source over a data dir's log: which
// Things each entry changes, and each Thing's document. Its methods may be
// called concurrently.
type LogSource struct {
	Log *feed.Log

	mu       sync.Mutex
	trackers map[topics.TrackerID]string // tracker names, as last read
	nodes    map[string]string           // node names, as last read
	// recent are the Things the last Changes read, by cursor: a Doc whose
	// latest edit is one of them takes it from here instead of reading the
	// log again (live, it almost always is).
	recent map[uint64]*topics.Payload
}

var _ search.Source = (*LogSource)(nil)

// NewLogSource returns the Source over log l.
func NewLogSource(l *feed.Log) *LogSource {
	return &LogSource{Log: l, trackers: make(map[topics.TrackerID]string), nodes: make(map[string]string)}
}

// Last implements search.Source.
func (s *LogSource) Last() uint64 { return s.Log.Last() }

// Wait implements search.Source.
func (s *LogSource) Wait(ctx context.Context, cursor uint64) error { return s.Log.Wait(ctx, cursor) }

// Changes implements search.Source: a thing entry (new Thing, version or
// edit) changes its Thing; a retraction the Thing of what it retracts; a
// tracker record (its name) every Thing of its tracker; a node record (the
// node's name) or a key rotation (which may void some) every Thing of the
// node's trackers. Other kinds change no
// Thing.
func (s *LogSource) Changes(ctx context.Context, after uint64, limit int) (search.Changes, error) {
	es, err := s.Log.Entries(after, limit)
	if err != nil || len(es) == 0 {
		return search.Changes{Next: after}, err
	}
	var keys []search.ThingKey
	var authors []string
	recent := make(map[uint64]*topics.Payload)
	defer func() {
		s.mu.Lock()
		s.recent = recent
		s.mu.Unlock()
	}()
	all := func(prefix []byte) error {
		ts, err := s.Log.ThingsAfter(prefix, nil, math.MaxInt)
		for _, t := range ts {
			keys = append(keys, search.ThingKey{Tracker: t.Tracker, Thing: t.Thing})
		}
		return err
	}
	for _, e := range es {
		if err := ctx.Err(); err != nil {
			return search.Changes{}, err
		}
		if e.Void {
			continue
		}
		switch e.Kind {
		case topics.KindThing, topics.KindRetract:
			b, err := topics.ParsePayload(e.Announcement)
			if err != nil {
				return search.Changes{}, fmt.Errorf("entry %d: %w", e.Cursor, err)
			}
			if b.Thing != nil {
				keys = append(keys, search.ThingKey{Tracker: e.Tracker, Thing: b.Thing.ID})
				recent[e.Cursor] = b
				continue
			}
			c, err := s.Log.Lookup(b.Retracts)
			if err != nil || c == 0 {
				if err != nil {
					return search.Changes{}, err
				}
				continue // retracts what this node does not hold
			}
			a, err := s.Log.Announcement(c)
			if err != nil {
				return search.Changes{}, err
			}
			if a.Payload.Thing != nil {
				keys = append(keys, search.ThingKey{Tracker: a.Payload.Tracker, Thing: a.Payload.Thing.ID})
			}
		case topics.KindTracker:
			s.mu.Lock()
			delete(s.trackers, e.Tracker)
			s.mu.Unlock()
			if err := all(e.Tracker[:]); err != nil {
				return search.Changes{}, err
			}
		case topics.KindRotate: // it may void Things the log then no longer lists
			authors = append(authors, e.Author)
		case topics.KindNode:
			raw, err := topics.NodeKey(e.Author)
			if err != nil {
				return search.Changes{}, err
			}
			s.mu.Lock()
			delete(s.nodes, e.Author)
			s.mu.Unlock()
			if err := all(topics.OwnerPrefix(raw)); err != nil {
				return search.Changes{}, err
			}
		}
	}
	return search.Changes{Things: keys, Authors: authors, Next: es[len(es)-1].Cursor}, nil
}

// Doc implements search.Source.
func (s *LogSource) Doc(_ context.Context, k search.ThingKey) (*search.Doc, error) {
	st, err := s.Log.Thing(k.Tracker, k.Thing)
	if errors.Is(err, feed.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lv := st.Latest()
	if lv == nil {
		return nil, nil // every version retracted
	}
	ref := lv.Latest()
	s.mu.Lock()
	p := s.recent[ref.Cursor]
	s.mu.Unlock()
	if p == nil {
		a, err := s.Log.Announcement(ref.Cursor)
		if err != nil {
			return nil, err
		}
		p = a.Payload
	}
	th := p.Thing
	if th == nil {
		return nil, fmt.Errorf("announcement %s is not a Thing", ref.ID)
	}
	d := &search.Doc{Tracker: k.Tracker, Thing: k.Thing, Author: p.Author, Announcement: ref.ID,
		Title: th.Title, Description: th.Description, Tags: th.Tags, Categories: th.Categories, Licences: th.Licenses,
		TrackerName: s.TrackerName(k.Tracker), NodeName: s.NodeName(p.Author)}
	for _, p := range th.Authors {
		d.People = append(d.People, p.Name)
	}
	return d, nil
}

// TrackerName returns a tracker's name ("" when unknown).
func (s *LogSource) TrackerName(t topics.TrackerID) string {
	s.mu.Lock()
	name, ok := s.trackers[t]
	s.mu.Unlock()
	if ok {
		return name
	}
	if st, err := s.Log.Tracker(t); err == nil {
		name = st.Name
	}
	s.mu.Lock()
	s.trackers[t] = name
	s.mu.Unlock()
	return name
}

// NodeName returns a node's name from its latest node record ("" when
// unknown).
func (s *LogSource) NodeName(id string) string {
	s.mu.Lock()
	name, ok := s.nodes[id]
	s.mu.Unlock()
	if ok {
		return name
	}
	if raw, err := topics.NodeKey(id); err == nil {
		if st, err := s.Log.Tracker(topics.DeriveTrackerID(raw, "")); err == nil && st.Info != nil {
			if a, err := s.Log.Announcement(st.Info.Cursor); err == nil && a.Payload.NodeInfo != nil {
				name = a.Payload.NodeInfo.Name
			}
		}
	}
	s.mu.Lock()
	s.nodes[id] = name
	s.mu.Unlock()
	return name
}

// OpenIndex opens the search index of dir d, over its log. A damaged index
// is removed and rebuilt from the log. With follow, a feeder keeps it
// current until it is closed.
func OpenIndex(d *Dir, follow bool, logger *slog.Logger) (*search.Index, *LogSource, error) {
	src := NewLogSource(d.Log)
	cfg := search.Config{Logger: logger, Follow: follow}
	ix, err := search.Open(d.IndexPath(), src, cfg)
	if err != nil && !errors.Is(err, os.ErrPermission) {
		if logger != nil {
			logger.Warn("search index unreadable; rebuilding it from the log", "err", err)
		}
		if rerr := os.RemoveAll(d.IndexPath()); rerr != nil {
			return nil, nil, errors.Join(err, rerr)
		}
		ix, err = search.Open(d.IndexPath(), src, cfg)
	}
	return ix, src, err
}

// Searcher answers searches over an index, describing hits from the log
// and the book. Its methods may be called concurrently.
type Searcher struct {
	Log    *feed.Log
	Book   *Book
	Index  *search.Index
	Source *LogSource
}

// Standing is what the book says now, for a search: levels and flagged
// targets.
func Standing(b *Book) search.Standing {
	st := search.Standing{Levels: b.Levels(), Unknown: string(trust.Unknown)}
	for _, t := range b.FlaggedTargets() {
		switch {
		case !t.Announcement.IsZero():
			st.Flagged.Announcements = append(st.Flagged.Announcements, t.Announcement)
		case t.Thing != "":
			st.Flagged.Things = append(st.Flagged.Things, search.ThingKey{Tracker: t.Tracker, Thing: t.Thing})
		case !t.Tracker.IsZero():
			st.Flagged.Trackers = append(st.Flagged.Trackers, t.Tracker)
		case t.Node != "":
			st.Flagged.Authors = append(st.Flagged.Authors, t.Node)
		}
	}
	return st
}

func (s Searcher) Search(ctx context.Context, q view.SearchQuery) (*view.SearchResult, error) {
	res, err := s.Index.Search(ctx, q, Standing(s.Book))
	if err != nil {
		return nil, err
	}
	out := &view.SearchResult{Total: res.Total, Hits: []view.ThingSummary{}, Facets: res.Facets, Behind: res.Behind}
	hits, err := s.Describe(res.Hits)
	if err != nil {
		return nil, err
	}
	out.Hits = hits
	for i, f := range out.Facets.Tracker {
		if t, err := topics.ParseTrackerID(f.Value); err == nil {
			out.Facets.Tracker[i].Name = s.Source.TrackerName(t)
		}
	}
	for i, f := range out.Facets.Author {
		out.Facets.Author[i].Name = s.Source.NodeName(f.Value)
	}
	return out, nil
}

// Describe returns the summaries of the Things hit; one the log no longer
// shows (the index is a step behind) is left out.
func (s Searcher) Describe(keys []search.ThingKey) ([]view.ThingSummary, error) {
	out := []view.ThingSummary{}
	for _, k := range keys {
		st, err := s.Log.Thing(k.Tracker, k.Thing)
		if errors.Is(err, feed.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sum, err := Summarize(s.Log, s.Book, st)
		if err != nil {
			return nil, err
		}
		if sum != nil {
			out = append(out, *sum)
		}
	}
	return out, nil
}

// SearchOffline searches the index of a dir no node runs on: it opens
// the index, catches it up with the log and answers. depth is the web of
// trust's hop limit (DefaultTrustDepth when 0).
func (d *Dir) SearchOffline(ctx context.Context, depth int, q view.SearchQuery) (*view.SearchResult, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	book, err := d.OpenBook(ctx, depth)
	if err != nil {
		return nil, err
	}
	ix, src, err := OpenIndex(d, false, nil)
	if err != nil {
		return nil, err
	}
	defer ix.Close()
	if err := ix.CatchUp(ctx); err != nil {
		return nil, err
	}
	res, err := Searcher{Log: d.Log, Book: book, Index: ix, Source: src}.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	return res, ix.Close()
}

// ReindexOffline rebuilds the search index of a dir no node runs on.
func (d *Dir) ReindexOffline(ctx context.Context) (search.Stats, error) {
	ix, _, err := OpenIndex(d, false, nil)
	if err != nil {
		return search.Stats{}, err
	}
	defer ix.Close()
	if err := ix.Reindex(ctx); err != nil {
		return search.Stats{}, err
	}
	return ix.Stats(), ix.Close()
}

// Summarize describes a Thing of log l by its latest version, with its
// author's level and its flags by book b; nil when every version is
// retracted.
func Summarize(l *feed.Log, b *Book, s *feed.ThingState) (*view.ThingSummary, error) {
	lv := s.Latest()
	if lv == nil {
		return nil, nil
	}
	ref := lv.Latest()
	a, err := l.Announcement(ref.Cursor)
	if err != nil {
		return nil, err
	}
	shown := 0
	for i := range s.Versions {
		if !s.Versions[i].Hidden() {
			shown++
		}
	}
	author := a.Payload.Author
	return &view.ThingSummary{
		Tracker: s.Tracker, ID: s.Thing, Author: author, Version: lv.Version, Versions: shown,
		Announcement: ref.ID, Cursor: ref.Cursor, Thing: a.Payload.Thing,
		Trust: string(b.Level(author).Level), Flags: ThingFlags(b, s.Tracker, s.Thing, author, ref.ID),
	}, nil
}

// ThingFlags returns the flags on a Thing: on its announcements, on the
// Thing, on its tracker and on its author.
func ThingFlags(b *Book, tracker topics.TrackerID, thing, author string, anns ...topics.ID) view.Flags {
	targets := make([]string, 0, 3+len(anns))
	for _, id := range anns {
		targets = append(targets, topics.FlagTarget{Announcement: id}.Key())
	}
	targets = append(targets,
		topics.FlagTarget{Tracker: tracker, Thing: thing}.Key(),
		topics.FlagTarget{Tracker: tracker}.Key(),
		topics.FlagTarget{Node: author}.Key())
	return b.Flags(targets...)
}
