package natsapi_test

import (
	"testing"

	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/view"
)

// TestSearch: ttn.api.search takes a view.SearchQuery and answers a
// view.SearchResult, with facets over every match.
func TestSearch(t *testing.T) {
	n := nodetest.Start(t, nodeConfig(t, &natsapi.Config{Addr: "0"}))
	a, b := createTracker(t, n, "shelves"), createTracker(t, n, "lamps")
	publish(t, n, a, things("shelf", 5, "wood"))
	publish(t, n, b, things("lamp", 3, "light", "wood"))
	nc := connect(t, n)
	nodetest.WaitIndexed(t, n)

	var res view.SearchResult
	if code, reason := request(t, nc, "ttn.api.search", view.SearchQuery{Text: "lamp", Limit: 2}, &res); code != "" {
		t.Fatalf("search: %s %s", code, reason)
	}
	if res.Total != 3 || len(res.Hits) != 2 || res.Hits[0].Tracker != b || len(res.Facets.Tag) != 2 {
		t.Fatalf("search lamp: %+v", res)
	}
	res = view.SearchResult{}
	if code, reason := request(t, nc, "ttn.api.search", view.SearchQuery{Tag: "WOOD"}, &res); code != "" {
		t.Fatalf("search: %s %s", code, reason)
	}
	if res.Total != 8 || len(res.Facets.Tracker) != 2 || res.Facets.Tracker[0] != (view.FacetCount{Value: a.String(), Name: "shelves", Count: 5}) {
		t.Fatalf("search tag wood: %+v", res)
	}
}
