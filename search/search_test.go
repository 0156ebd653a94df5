package search

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// memLog is a Source over an in-memory log: each entry changes one Thing
// (to a new Doc, or nil to hide it).
type memLog struct {
	mu      sync.Mutex
	entries []ThingKey
	docs    map[ThingKey]*Doc
	wake    chan struct{}
}

func newMemLog() *memLog {
	return &memLog{docs: make(map[ThingKey]*Doc), wake: make(chan struct{})}
}

func (l *memLog) put(d *Doc, k ThingKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, k)
	if d == nil {
		delete(l.docs, k)
	} else {
		l.docs[k] = d
	}
	close(l.wake)
	l.wake = make(chan struct{})
}

func (l *memLog) add(d *Doc) { l.put(d, ThingKey{d.Tracker, d.Thing}) }

func (l *memLog) Changes(_ context.Context, after uint64, limit int) (Changes, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := min(uint64(len(l.entries)), after+uint64(limit))
	if after >= end {
		return Changes{Next: after}, nil
	}
	return Changes{Things: slices.Clone(l.entries[after:end]), Next: end}, nil
}

func (l *memLog) Doc(_ context.Context, k ThingKey) (*Doc, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.docs[k], nil
}

func (l *memLog) Last() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.entries))
}

func (l *memLog) Wait(ctx context.Context, cursor uint64) error {
	for {
		l.mu.Lock()
		n, wake := uint64(len(l.entries)), l.wake
		l.mu.Unlock()
		if n > cursor {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var (
	trackerA = topics.DeriveTrackerID([]byte("key of a"), "printers")
	trackerB = topics.DeriveTrackerID([]byte("key of b"), "robots")
	authorA  = nodeID(1)
	authorB  = nodeID(2)
	authorC  = nodeID(3)
)

// nodeID returns a valid node ID made from a seed.
func nodeID(seed byte) string {
	raw := make([]byte, 32)
	raw[0] = seed
	k, err := crypto.UnmarshalEd25519PublicKey(raw)
	if err != nil {
		panic(err)
	}
	id, err := topics.NodeID(k)
	if err != nil {
		panic(err)
	}
	return id
}

// corpus is a small set of Things, one field of each worth finding.
func corpus() []*Doc {
	return []*Doc{
		{Tracker: trackerA, Thing: "t1", Author: authorA, Announcement: topics.ID{1}, Title: "Belt tensioner",
			Description: "A tensioner for GT2 belts", Tags: []string{"Printer", "belt"}, Licences: []string{"CC-BY-4.0"},
			Categories: []string{"hardware"}, People: []string{"Ada Lovelace"}, TrackerName: "printers", NodeName: "ada's node"},
		{Tracker: trackerA, Thing: "t2", Author: authorA, Announcement: topics.ID{2}, Title: "Spool holder",
			Description: "Holds a filament spool above the printer", Tags: []string{"printer"}, Licences: []string{"CC-BY-4.0"},
			Categories: []string{"accessories"}, People: []string{"Grace Hopper"}, TrackerName: "printers", NodeName: "ada's node"},
		{Tracker: trackerB, Thing: "r1", Author: authorB, Announcement: topics.ID{3}, Title: "Gripper",
			Description: "A two-finger gripper", Tags: []string{"robot"}, Licences: []string{"MIT"},
			Categories: []string{"mechanics"}, People: []string{"Alan Turing"}, TrackerName: "robots", NodeName: "workshop"},
		{Tracker: trackerB, Thing: "r2", Author: authorC, Announcement: topics.ID{4}, Title: "Wheel hub",
			Description: "Hub for a robot wheel", Tags: []string{"robot", "wheel"}, Licences: []string{"MIT", "GPL-3.0"},
			Categories: []string{"mechanics"}, People: []string{"Alan Turing"}, TrackerName: "robots", NodeName: "garage"},
	}
}

// open opens an index at dir over src and closes it when the test ends.
func open(t *testing.T, dir string, src Source, cfg Config) *Index {
	t.Helper()
	ix, err := Open(filepath.Join(dir, "index"), src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

// fed returns an index caught up with a log of the corpus.
func fed(t *testing.T) (*Index, *memLog) {
	t.Helper()
	l := newMemLog()
	for _, d := range corpus() {
		l.add(d)
	}
	ix := open(t, t.TempDir(), l, Config{})
	if err := ix.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ix, l
}

// ids runs a search and returns the Thing IDs of its hits, in order.
func ids(t *testing.T, ix *Index, q view.SearchQuery, st Standing) []string {
	t.Helper()
	res, err := ix.Search(context.Background(), q, st)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, h := range res.Hits {
		out = append(out, h.Thing)
	}
	return out
}

func sorted(s []string) []string { slices.Sort(s); return s }

func TestTextOverEachField(t *testing.T) {
	ix, _ := fed(t)
	for _, tc := range []struct {
		field, text string
		want        []string
	}{
		{"title", "tensioner", []string{"t1"}},
		{"description", "filament", []string{"t2"}},
		{"tag", "wheel", []string{"r2"}},
		{"category", "accessories", []string{"t2"}},
		{"licence", "GPL", []string{"r2"}},
		{"person", "hopper", []string{"t2"}},
		{"tracker name", "robots", []string{"r1", "r2"}},
		{"node name", "garage", []string{"r2"}},
		{"thing id", "r1", []string{"r1"}},
		{"every word", "robot wheel hub", []string{"r2"}},
		{"no match", "submarine", []string{}},
	} {
		if got := sorted(ids(t, ix, view.SearchQuery{Text: tc.text}, Standing{})); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q found %v, want %v", tc.field, tc.text, got, tc.want)
		}
	}
	// A match in the title ranks first.
	if got := ids(t, ix, view.SearchQuery{Text: "printer"}, Standing{}); len(got) != 2 {
		t.Errorf("printer: %v", got)
	}
}

func TestFacetsAndFilters(t *testing.T) {
	ix, _ := fed(t)
	res, err := ix.Search(context.Background(), view.SearchQuery{}, Standing{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 4 {
		t.Fatalf("total %d, want 4", res.Total)
	}
	facet := func(fc []view.FacetCount) map[string]int {
		m := map[string]int{}
		for _, f := range fc {
			m[f.Value] = f.Count
		}
		return m
	}
	for name, tc := range map[string]struct {
		got, want map[string]int
	}{
		"licence": {facet(res.Facets.Licence), map[string]int{"cc-by-4.0": 2, "mit": 2, "gpl-3.0": 1}},
		"tag":     {facet(res.Facets.Tag), map[string]int{"printer": 2, "belt": 1, "robot": 2, "wheel": 1}},
		"author":  {facet(res.Facets.Author), map[string]int{authorA: 2, authorB: 1, authorC: 1}},
		"tracker": {facet(res.Facets.Tracker), map[string]int{trackerA.String(): 2, trackerB.String(): 2}},
	} {
		if fmt.Sprint(tc.got) != fmt.Sprint(tc.want) {
			t.Errorf("facet %s: got %v, want %v", name, tc.got, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		q    view.SearchQuery
		want []string
	}{
		{"licence, any case", view.SearchQuery{Licence: "mit"}, []string{"r1", "r2"}},
		{"tag, any case", view.SearchQuery{Tag: "PRINTER"}, []string{"t1", "t2"}},
		{"author", view.SearchQuery{Author: authorC}, []string{"r2"}},
		{"tracker", view.SearchQuery{Tracker: trackerA}, []string{"t1", "t2"}},
		{"text and filter", view.SearchQuery{Text: "robot", Licence: "GPL-3.0"}, []string{"r2"}},
	} {
		if got := sorted(ids(t, ix, tc.q, Standing{})); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	// Facets count every match, not only the page.
	res, err = ix.Search(context.Background(), view.SearchQuery{Tag: "robot", Limit: 1}, Standing{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 2 || len(res.Hits) != 1 || fmt.Sprint(facet(res.Facets.Licence)) != fmt.Sprint(map[string]int{"mit": 2, "gpl-3.0": 1}) {
		t.Errorf("tag robot, limit 1: total %d, %d hits, licences %v", res.Total, len(res.Hits), res.Facets.Licence)
	}
}

func TestFlaggedLeftOut(t *testing.T) {
	ix, _ := fed(t)
	for _, tc := range []struct {
		name string
		f    Flagged
		want []string
	}{
		{"thing", Flagged{Things: []ThingKey{{trackerA, "t1"}}}, []string{"r1", "r2", "t2"}},
		{"tracker", Flagged{Trackers: []topics.TrackerID{trackerB}}, []string{"t1", "t2"}},
		{"author", Flagged{Authors: []string{authorB}}, []string{"r2", "t1", "t2"}},
		{"announcement", Flagged{Announcements: []topics.ID{{4}}}, []string{"r1", "t1", "t2"}},
		{"none", Flagged{}, []string{"r1", "r2", "t1", "t2"}},
	} {
		st := Standing{Flagged: tc.f}
		res, err := ix.Search(context.Background(), view.SearchQuery{}, st)
		if err != nil {
			t.Fatal(err)
		}
		if got := sorted(ids(t, ix, view.SearchQuery{}, st)); !slices.Equal(got, tc.want) {
			t.Errorf("%s flagged: got %v, want %v", tc.name, got, tc.want)
		}
		sum := 0
		for _, f := range res.Facets.Tracker {
			sum += f.Count
		}
		if res.Total != uint64(len(tc.want)) || sum != len(tc.want) {
			t.Errorf("%s flagged: total %d, tracker facet sums to %d, want %d", tc.name, res.Total, sum, len(tc.want))
		}
		if got := ids(t, ix, view.SearchQuery{Flagged: true}, st); len(got) != 4 {
			t.Errorf("%s flagged, asked for: got %v, want all 4", tc.name, got)
		}
	}
}

func TestTrust(t *testing.T) {
	ix, _ := fed(t)
	st := Standing{Levels: map[string]string{authorA: "trusted", authorB: "marginal"}}
	res, err := ix.Search(context.Background(), view.SearchQuery{}, st)
	if err != nil {
		t.Fatal(err)
	}
	want := []view.FacetCount{{Value: "trusted", Count: 2}, {Value: "marginal", Count: 1}, {Value: "unknown", Count: 1}}
	if !slices.Equal(res.Facets.Trust, want) {
		t.Errorf("trust facet %v, want %v", res.Facets.Trust, want)
	}
	for level, want := range map[string][]string{"trusted": {"t1", "t2"}, "marginal": {"r1"}, "unknown": {"r2"}, "verified": {}} {
		if got := sorted(ids(t, ix, view.SearchQuery{Trust: level}, st)); !slices.Equal(got, want) {
			t.Errorf("trust %s: got %v, want %v", level, got, want)
		}
	}
	// Levels change without a reindex.
	st.Levels[authorC] = "trusted"
	if got := sorted(ids(t, ix, view.SearchQuery{Trust: "trusted"}, st)); !slices.Equal(got, []string{"r2", "t1", "t2"}) {
		t.Errorf("trust trusted after a change: %v", got)
	}
}

func TestPaging(t *testing.T) {
	ix, _ := fed(t)
	var all []string
	for from := 0; from < 6; from += 3 {
		res, err := ix.Search(context.Background(), view.SearchQuery{From: from, Limit: 3}, Standing{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != 4 {
			t.Errorf("from %d: total %d", from, res.Total)
		}
		for _, h := range res.Hits {
			all = append(all, h.Thing)
		}
	}
	if !slices.Equal(sorted(all), []string{"r1", "r2", "t1", "t2"}) {
		t.Errorf("pages held %v, want each Thing once", all)
	}
	if _, err := ix.Search(context.Background(), view.SearchQuery{Limit: view.MaxSearchLimit + 1}, Standing{}); err == nil {
		t.Error("a limit past the bound was accepted")
	}
}

// TestResume: the cursor survives a close; a reopened index reads on from
// it, including changes to Things it holds.
func TestResume(t *testing.T) {
	l := newMemLog()
	dir := t.TempDir()
	c := corpus()
	l.add(c[0])
	l.add(c[1])
	ix := open(t, dir, l, Config{})
	if err := ix.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := ix.Search(context.Background(), view.SearchQuery{}, Standing{}); err != ErrClosed {
		t.Errorf("search after Close: %v, want ErrClosed", err)
	}
	l.add(c[2])
	l.put(nil, ThingKey{c[0].Tracker, c[0].Thing}) // retracted
	// A Source that fails for what was applied before the close shows the
	// reopened index does not read it again.
	ix = open(t, dir, &fromOnly{memLog: l, from: 2}, Config{})
	if got := ix.Stats().Cursor; got != 2 {
		t.Fatalf("cursor after reopen %d, want 2", got)
	}
	if b := ix.Behind(); b != 2 {
		t.Errorf("behind %d, want 2", b)
	}
	if err := ix.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sorted(ids(t, ix, view.SearchQuery{}, Standing{})); !slices.Equal(got, []string{"r1", "t2"}) {
		t.Errorf("after resume: %v, want r1 t2", got)
	}
}

// fromOnly fails a read of the log before from.
type fromOnly struct {
	*memLog
	from uint64
}

func (f *fromOnly) Changes(ctx context.Context, after uint64, limit int) (Changes, error) {
	if after < f.from {
		return Changes{}, fmt.Errorf("read from %d, before %d", after, f.from)
	}
	return f.memLog.Changes(ctx, after, limit)
}

func TestReindex(t *testing.T) {
	ix, l := fed(t)
	before := ids(t, ix, view.SearchQuery{}, Standing{})
	// What the log says now, whatever the index holds.
	c := corpus()[3]
	c.Title = "Castor wheel"
	l.docs[ThingKey{c.Tracker, c.Thing}] = c
	l.add(&Doc{Tracker: trackerB, Thing: "r3", Author: authorB, Title: "Servo horn"}) // not caught up
	before = append(before, "r3")
	if err := ix.Reindex(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, ix, view.SearchQuery{}, Standing{}); !slices.Equal(sorted(got), sorted(before)) {
		t.Errorf("after reindex: %v, want %v", got, before)
	}
	if got := ids(t, ix, view.SearchQuery{Text: "castor"}, Standing{}); !slices.Equal(got, []string{"r2"}) {
		t.Errorf("castor after reindex: %v, want r2", got)
	}
	if ix.Stats().Cursor != l.Last() {
		t.Errorf("cursor %d after reindex, want %d", ix.Stats().Cursor, l.Last())
	}
	if _, err := os.Stat(ix.path + rebuildSuffix); !os.IsNotExist(err) {
		t.Errorf("rebuild dir left: %v", err)
	}
}

// TestFollow: with a feeder, what the log appends is found without a
// CatchUp, in batches smaller than the log.
func TestFollow(t *testing.T) {
	l := newMemLog()
	ix := open(t, t.TempDir(), l, Config{Follow: true, BatchSize: 7})
	for i := range 100 {
		l.add(&Doc{Tracker: trackerA, Thing: fmt.Sprintf("thing%d", i), Author: authorA, Title: fmt.Sprintf("gadget number%d", i)})
	}
	wait.For(t, 10*time.Second, func() error {
		res, err := ix.Search(context.Background(), view.SearchQuery{Text: "gadget"}, Standing{})
		if err != nil {
			return err
		}
		if res.Total != 100 || res.Behind != 0 {
			return fmt.Errorf("found %d of 100, %d behind", res.Total, res.Behind)
		}
		return nil
	})
	if got := ids(t, ix, view.SearchQuery{Text: "number42"}, Standing{}); !slices.Equal(got, []string{"thing42"}) {
		t.Errorf("number42: %v", got)
	}
}

func TestConfig(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "index"), newMemLog(), Config{BatchSize: -1, FacetSize: -1})
	if err == nil || !containsAll(err.Error(), "BatchSize", "FacetSize") {
		t.Errorf("bad config: %v, want both problems", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "index"), nil, Config{}); err == nil {
		t.Error("no Source accepted")
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
