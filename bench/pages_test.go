package bench

import (
	"context"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/thingtracker/ttn/httpapi"
	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/topics"
)

// BenchmarkPages measures the pages a maker looks at on a node holding one
// tracker of 10,000 varied 1 KB Things (1,000 with -short): the time to
// render the tracker's page (its first 100 Things), a Thing's page and the
// live feed page (its newest 50 Things), each as a ratio of the HTTP API's
// answer to the same question in the same run (the JSON of
// /v1/things?tracker=ID&limit=100, /v1/things/{tracker}/{thing}, and
// /v1/things?limit=50), and the feed page's weight: HTML, style sheet and
// script, against the JSON of the same 50 Things.
func BenchmarkPages(b *testing.B) {
	n := 10000
	if testing.Short() {
		n = 1000
	}
	cfg := nodetest.Config(b)
	cfg.HTTP = &httpapi.Config{Addr: "127.0.0.1:0"}
	node := nodetest.Start(b, cfg)
	ctx := context.Background()
	tr, err := node.CreateTracker(ctx, topics.TrackerInfo{Name: "bench", Title: "Ten thousand Things"}, false)
	if err != nil {
		b.Fatal(err)
	}
	things := oneKBThings(n)
	for i := 0; i < n; i += 1000 {
		batch := make([]topics.Thing, 0, 1000)
		for _, t := range things[i:min(i+1000, n)] {
			batch = append(batch, *t)
		}
		if _, err := node.Publish(ctx, tr.ID, batch); err != nil {
			b.Fatal(err)
		}
	}
	site := "http://" + node.HTTPAddr()
	thing := things[n/2].ID
	get := func(path string) (time.Duration, int) {
		start := time.Now()
		res, err := http.Get(site + path)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("GET %s: %d %v", path, res.StatusCode, err)
		}
		return time.Since(start), len(body)
	}
	type pair struct{ name, page, api string }
	pairs := []pair{
		{"tracker", "/trackers/" + tr.ID.String(), "/v1/things?limit=100&tracker=" + tr.ID.String()},
		{"thing", "/things/" + tr.ID.String() + "/" + thing, "/v1/things/" + tr.ID.String() + "/" + thing},
		{"feed", "/", "/v1/things?limit=50"},
	}
	times := map[string][]time.Duration{}
	for b.Loop() {
		for _, p := range pairs {
			d, _ := get(p.page)
			times[p.name+"-page"] = append(times[p.name+"-page"], d)
			d, _ = get(p.api)
			times[p.name+"-api"] = append(times[p.name+"-api"], d)
		}
	}
	median := func(ds []time.Duration) time.Duration {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	for _, p := range pairs {
		page, api := median(times[p.name+"-page"]), median(times[p.name+"-api"])
		b.ReportMetric(float64(page.Microseconds())/1000, p.name+"-page-ms")
		b.ReportMetric(float64(page)/float64(api), p.name+"-page/api")
	}
	_, html := get("/")
	_, css := get("/assets/style.css")
	_, js := get("/assets/live.js")
	_, json := get("/v1/things?limit=50")
	weight := html + css + js
	b.ReportMetric(float64(weight), "feed-page-bytes")
	b.ReportMetric(float64(weight)/float64(json), "feed-bytes/api")
	b.Logf("config: one node, one tracker of %d varied Things (1 KB announcements); %d rounds of GETs over loopback; medians: tracker page %v (API %v), Thing page %v (API %v), feed page %v (API %v); feed page %d bytes (HTML %d, CSS %d, JS %d) against %d bytes of JSON for the same 50 Things",
		n, len(times["feed-page"]), median(times["tracker-page"]), median(times["tracker-api"]), median(times["thing-page"]), median(times["thing-api"]),
		median(times["feed-page"]), median(times["feed-api"]), weight, html, css, js, json)
}
