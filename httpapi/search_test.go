package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// TestSearch: GET /v1/search finds Things by text, filters by facet, pages
// and counts facets over every match; bad parameters get a 400.
func TestSearch(t *testing.T) {
	ctx := context.Background()
	n := nodetest.Start(t, nodeConfig(t))
	tr, err := n.CreateTracker(ctx, topics.TrackerInfo{Name: "kitchen"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Publish(ctx, tr.ID, []topics.Thing{
		{ID: "whisk", Title: "Balloon whisk", Version: "1", Licenses: []string{"MIT"}, Tags: []string{"utensil"}},
		{ID: "ladle", Title: "Soup ladle", Version: "1", Licenses: []string{"CC0-1.0"}, Tags: []string{"utensil"}},
		{ID: "oven", Title: "Solar oven", Version: "1", Licenses: []string{"MIT"}, Description: "Bakes with sunlight"},
	}); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitIndexed(t, n)

	var res view.SearchResult
	getJSON(t, n, "/v1/search?text=sunlight", &res)
	if res.Total != 1 || len(res.Hits) != 1 || res.Hits[0].ID != "oven" || res.Hits[0].Thing == nil {
		t.Fatalf("text=sunlight: %+v", res)
	}
	res = view.SearchResult{}
	getJSON(t, n, "/v1/search?text=kitchen&licence=mit&limit=1", &res)
	if res.Total != 2 || len(res.Hits) != 1 || len(res.Facets.Licence) != 1 || res.Facets.Licence[0] != (view.FacetCount{Value: "mit", Count: 2}) {
		t.Fatalf("text=kitchen&licence=mit&limit=1: %+v", res)
	}
	first := res.Hits[0].ID
	res = view.SearchResult{}
	getJSON(t, n, "/v1/search?text=kitchen&licence=mit&limit=1&from=1", &res)
	if len(res.Hits) != 1 || res.Hits[0].ID == first {
		t.Fatalf("page 2: %+v, page 1 had %s", res, first)
	}
	res = view.SearchResult{}
	getJSON(t, n, "/v1/search?tag=utensil&tracker="+tr.ID.String()+"&author="+n.ID.ID+"&trust=self", &res)
	if res.Total != 2 || len(res.Facets.Trust) != 1 || res.Facets.Trust[0] != (view.FacetCount{Value: "self", Count: 2}) ||
		len(res.Facets.Tracker) != 1 || res.Facets.Tracker[0].Name != "kitchen" {
		t.Fatalf("tag=utensil&tracker&author&trust=self: %+v", res)
	}
	for _, q := range []string{"limit=201", "from=10001", "from=-1", "author=me", "tracker=nope", "flagged=maybe", "fuzzy=1", "text=a&text=b"} {
		code, body := get(t, n, "/v1/search?"+q)
		if code != http.StatusBadRequest || !strings.Contains(string(body), "error") {
			t.Errorf("/v1/search?%s: %d %s, want 400", q, code, body)
		}
	}
}
