package feed

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/thingtracker/ttn/topics"
)

// TestDerivedFrom: the log answers what derives from a Thing, across
// trackers and authors, and a log written before the index builds it when
// it opens.
func TestDerivedFrom(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "log")
	l, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := newAuthor(t, 1), newAuthor(t, 2)
	base := a.tracker("base")
	publish := func(who *author, tracker topics.TrackerID, thing topics.Thing) Published {
		t.Helper()
		ps, err := l.Publish(ctx, who.key, []Draft{{Tracker: tracker, Kind: topics.KindThing, Thing: &thing}})
		if err != nil {
			t.Fatal(err)
		}
		return ps[0]
	}
	origin := publish(a, base, topics.Thing{ID: "bracket", Title: "Bracket", Version: "1"})
	remix := publish(b, b.tracker("remixes"), topics.Thing{ID: "bracket-xl", Title: "Bracket XL", Version: "2",
		Parents: []topics.Parent{{Announcement: origin.ID, Tracker: base, Thing: "bracket", Version: "1"}}})
	sibling := publish(a, base, topics.Thing{ID: "bracket-mini", Title: "Bracket mini", Version: "1",
		Parents: []topics.Parent{{Thing: "bracket"}}}) // the same tracker
	publish(a, base, topics.Thing{ID: "unrelated", Title: "Hook", Version: "1"})

	check := func(l *Log) {
		t.Helper()
		ds, err := l.DerivedFrom(base, "bracket")
		if err != nil {
			t.Fatal(err)
		}
		want := map[topics.ID]Derived{
			remix.ID:   {Tracker: b.tracker("remixes"), Thing: "bracket-xl", Version: "2", ID: remix.ID, ParentVersion: "1"},
			sibling.ID: {Tracker: base, Thing: "bracket-mini", Version: "1", ID: sibling.ID},
		}
		if len(ds) != len(want) {
			t.Fatalf("derived from the bracket: %+v", ds)
		}
		for _, d := range ds {
			if want[d.ID] != d {
				t.Errorf("derived %+v, want %+v", d, want[d.ID])
			}
		}
		if ds, err := l.DerivedFrom(base, "unrelated"); err != nil || len(ds) != 0 {
			t.Errorf("derived from a Thing nothing names: %+v %v", ds, err)
		}
	}
	check(l)

	// What an older version wrote: no index, no mark.
	check(reopenWithout(t, l, dir, ancestryIndexed, derivedKey(base, "bracket", b.tracker("remixes"), "bracket-xl", "2"),
		derivedKey(base, "bracket", base, "bracket-mini", "1")))
}
