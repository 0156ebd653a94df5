package node

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// searchFor waits until a search on n finds want Things (by ID, in any
// order) and returns the result.
func searchFor(t *testing.T, n *Node, q view.SearchQuery, want ...string) *view.SearchResult {
	t.Helper()
	var res *view.SearchResult
	wait.For(t, 15*time.Second, func() error {
		var err error
		if res, err = n.Search(context.Background(), q); err != nil {
			return err
		}
		got := map[string]bool{}
		for _, h := range res.Hits {
			got[h.ID] = true
		}
		if len(got) != len(want) || res.Total != uint64(len(want)) {
			return fmt.Errorf("search %+v found %v (total %d), want %v", q, got, res.Total, want)
		}
		for _, w := range want {
			if !got[w] {
				return fmt.Errorf("search %+v found %v, want %v", q, got, want)
			}
		}
		return nil
	})
	return res
}

// TestSearchAcrossNodes: a Thing published on one node is found by search
// on another, by its text and facets; a retraction and a flag there take
// it out; Things text queries use the index.
func TestSearchAcrossNodes(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	a := startNode(t, fastConfig(filepath.Join(root, "a")))
	tr, err := a.CreateTracker(ctx, topics.TrackerInfo{Name: "workshop"}, false)
	if err != nil {
		t.Fatal(err)
	}
	b := startNode(t, func() Config {
		c := fastConfig(filepath.Join(root, "b"), a.GossipAddr())
		c.Follow = datadir.FollowSet{Trackers: []topics.TrackerID{tr.ID}}
		return c
	}())
	ps, err := a.Publish(ctx, tr.ID, []topics.Thing{
		{ID: "gearbox", Title: "Planetary gearbox", Version: "1", Description: "A 5:1 reduction for NEMA17 steppers",
			Tags: []string{"Gears"}, Licenses: []string{"CERN-OHL-S-2.0"}, Authors: []topics.Person{{Name: "Hedy Lamarr"}}},
		{ID: "clamp", Title: "Bench clamp", Version: "1", Tags: []string{"tools"}, Licenses: []string{"MIT"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	res := searchFor(t, b, view.SearchQuery{Text: "reduction steppers"}, "gearbox")
	h := res.Hits[0]
	if h.Tracker != tr.ID || h.Author != a.ID.ID || h.Thing == nil || h.Thing.Title != "Planetary gearbox" || h.Announcement != ps[0].ID {
		t.Errorf("hit %+v", h)
	}
	searchFor(t, b, view.SearchQuery{Text: "lamarr"}, "gearbox")
	searchFor(t, b, view.SearchQuery{Text: "workshop"}, "gearbox", "clamp") // the tracker's name
	res = searchFor(t, b, view.SearchQuery{Tag: "gears"}, "gearbox")
	if len(res.Facets.Tracker) != 1 || res.Facets.Tracker[0].Name != "workshop" || len(res.Facets.Trust) != 1 || res.Facets.Trust[0].Value != "unknown" {
		t.Errorf("facets %+v", res.Facets)
	}

	// /v1/things?text= and ttn.api.things answer from the index.
	page, err := b.Things(ctx, view.ThingsQuery{Text: "Lamarr"})
	if err != nil || len(page.Things) != 1 || page.Things[0].ID != "gearbox" {
		t.Fatalf("things text: %+v, %v", page, err)
	}
	page, err = b.Things(ctx, view.ThingsQuery{Text: "workshop", Limit: 1})
	if err != nil || len(page.Things) != 1 || page.Next == "" {
		t.Fatalf("things text, page 1: %+v, %v", page, err)
	}
	first := page.Things[0].ID
	page, err = b.Things(ctx, view.ThingsQuery{Text: "workshop", Limit: 1, After: page.Next})
	if err != nil || len(page.Things) != 1 || page.Things[0].ID == first {
		t.Fatalf("things text, page 2: %+v, %v", page, err)
	}

	// A flag by b itself leaves the Thing out, unless asked.
	if _, err := b.Flag(ctx, topics.Flag{Target: topics.FlagTarget{Tracker: tr.ID, Thing: "clamp"}, Reason: topics.FlagSpam}); err != nil {
		t.Fatal(err)
	}
	searchFor(t, b, view.SearchQuery{Text: "workshop"}, "gearbox")
	searchFor(t, b, view.SearchQuery{Text: "workshop", Flagged: true}, "gearbox", "clamp")

	// A retraction on a reaches b's index.
	if _, err := a.Retract(ctx, ps[0].ID); err != nil {
		t.Fatal(err)
	}
	searchFor(t, b, view.SearchQuery{Text: "gearbox"})
}

// TestSearchRestartCatchesUp: what the log gains while no node runs is
// indexed when the node next runs, from the cursor the index kept.
func TestSearchRestartCatchesUp(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a")
	n, err := New(ctx, fastConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := n.CreateTracker(ctx, topics.TrackerInfo{Name: "garden"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Publish(ctx, tr.ID, []topics.Thing{{ID: "trowel", Title: "Trowel", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	searchFor(t, n, view.SearchQuery{Text: "trowel"}, "trowel")
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	d, err := datadir.Open(dir, feed.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Publish(ctx, tr.ID, []topics.Thing{{ID: "rake", Title: "Rake", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	n = startNode(t, fastConfig(dir))
	if c := n.index.Stats().Cursor; c == 0 {
		t.Errorf("the index restarted from cursor 0")
	}
	searchFor(t, n, view.SearchQuery{Text: "garden"}, "trowel", "rake")
	// A rebuild finds the same.
	if err := n.Reindex(ctx); err != nil {
		t.Fatal(err)
	}
	searchFor(t, n, view.SearchQuery{Text: "garden"}, "trowel", "rake")
}
