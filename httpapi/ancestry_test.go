package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// TestAncestry: GET /v1/things/{tracker}/{thing}/ancestry names what a
// Thing derives from (held or not) and what derives from it, on another
// tracker too; a Thing whose own ID ends in /ancestry is still itself.
func TestAncestry(t *testing.T) {
	ctx := context.Background()
	n := nodetest.Start(t, nodeConfig(t))
	mk := func(name string) topics.TrackerID {
		r, err := n.CreateTracker(ctx, topics.TrackerInfo{Name: name}, false)
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	base, remixes := mk("base"), mk("remixes")
	publish := func(tracker topics.TrackerID, th topics.Thing) {
		t.Helper()
		// One parent is on a tracker this node does not follow.
		if _, err := n.Publish(ctx, tracker, []topics.Thing{th}, datadir.PublishOptions{AllowUnknownParent: true}); err != nil {
			t.Fatal(err)
		}
	}
	elsewhere := topics.DeriveTrackerID(make([]byte, 32), "not followed here")
	publish(base, topics.Thing{ID: "bracket", Title: "Bracket", Version: "1",
		Parents: []topics.Parent{{Tracker: elsewhere, Thing: "shelf", Version: "3"}}})
	publish(remixes, topics.Thing{ID: "bracket-xl", Title: "Bracket XL", Version: "1",
		Parents: []topics.Parent{{Tracker: base, Thing: "bracket", Version: "1"}}})
	publish(base, topics.Thing{ID: "odd/ancestry", Title: "A Thing named so", Version: "1"})

	var a view.Ancestry
	getJSON(t, n, "/v1/things/"+base.String()+"/bracket/ancestry", &a)
	if len(a.Parents) != 1 || a.Parents[0].Held || a.Parents[0].Parent.Thing != "shelf" || a.Parents[0].Version != "1" {
		t.Errorf("parents: %+v", a.Parents)
	}
	if len(a.Children) != 1 || a.Children[0].Tracker != remixes || a.Children[0].Thing != "bracket-xl" || a.Children[0].Title != "Bracket XL" {
		t.Errorf("children: %+v", a.Children)
	}
	getJSON(t, n, "/v1/things/"+remixes.String()+"/bracket-xl/ancestry", &a)
	if len(a.Parents) != 1 || !a.Parents[0].Held || a.Parents[0].Title != "Bracket" || len(a.Children) != 0 {
		t.Errorf("the remix's ancestry: %+v", a)
	}
	var th view.Thing
	getJSON(t, n, "/v1/things/"+base.String()+"/odd/ancestry", &th)
	if th.ID != "odd/ancestry" {
		t.Errorf("the Thing named odd/ancestry: %+v", th)
	}
	wantError(t, n, "/v1/things/"+base.String()+"/nothing/ancestry", http.StatusNotFound, "")
}
