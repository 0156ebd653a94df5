package httpapi_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/view"

	"github.com/go-json-experiment/json"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	ttnfeed "github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/httpapi"
	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/internal/ttnschema"
	"github.com/thingtracker/ttn/node"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
)

// The tests run real nodes serving HTTP on an ephemeral loopback port.

func nodeConfig(t *testing.T, join ...string) node.Config {
	cfg := nodetest.Config(t, join...)
	cfg.HTTP = &httpapi.Config{Addr: "0", MaxFeeds: 2}
	return cfg
}

// get fetches path and returns the status and body.
func get(t *testing.T, n *node.Node, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTPAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// getJSON fetches path, wants 200 and decodes the body into out.
func getJSON(t *testing.T, n *node.Node, path string, out any) {
	t.Helper()
	code, b := get(t, n, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, b)
	}
}

// scrape reads /metrics, and returns a lookup of one sample's value by name
// and labels (name, value, …), and the parsed families.
func scrape(t *testing.T, n *node.Node) (func(name string, labels ...string) float64, map[string]*dto.MetricFamily) {
	t.Helper()
	code, b := get(t, n, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	value := func(name string, labels ...string) float64 {
		t.Helper()
		f, ok := fams[name]
		if !ok {
			t.Fatalf("no %s", name)
		}
	metrics:
		for _, m := range f.Metric {
			for i := 0; i < len(labels); i += 2 {
				found := false
				for _, l := range m.Label {
					found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}
				if !found {
					continue metrics
				}
			}
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
			return m.Counter.GetValue()
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	return value, fams
}

// specDoc is the TTN specification's example tracker.
func specDoc(t *testing.T) *ttn.Document {
	t.Helper()
	b, err := os.ReadFile("../internal/ttnschema/spec/example-tracker.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ttn.ParseDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestEndpoints runs every REST endpoint against a node holding the spec's
// example tracker and one of its own, with versions, edits and a
// retraction.
func TestEndpoints(t *testing.T) {
	ctx := context.Background()
	n := nodetest.Start(t, nodeConfig(t))
	doc := specDoc(t)
	imp, err := n.Import(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	spec := imp.Tracker.ID
	mine, err := n.CreateTracker(ctx, topics.TrackerInfo{Name: "workshop", Title: "Workshop"}, false)
	if err != nil {
		t.Fatal(err)
	}
	var things []topics.Thing
	for i := range 12 {
		things = append(things, topics.Thing{ID: fmt.Sprintf("jig-%02d", i), Title: fmt.Sprintf("Jig %d", i), Version: "1", Tags: []string{"jig"}})
	}
	if _, err := n.Publish(ctx, mine.ID, things); err != nil {
		t.Fatal(err)
	}
	v2, err := n.Publish(ctx, mine.ID, []topics.Thing{{ID: "jig-00", Title: "Jig 0 mk II", Version: "2"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Publish(ctx, mine.ID, []topics.Thing{{ID: "jig-00", Title: "Jig 0 (fixed)", Version: "1", Tags: []string{"jig"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Retract(ctx, v2[0].ID); err != nil {
		t.Fatal(err)
	}

	nodetest.WaitIndexed(t, n) // text queries read the search index
	t.Run("things", func(t *testing.T) {
		all := func(query string) []view.ThingSummary {
			var out []view.ThingSummary
			after := ""
			for range 100 {
				var p view.ThingsPage
				getJSON(t, n, "/v1/things?"+query+after, &p)
				out = append(out, p.Things...)
				if p.Next == "" {
					return out
				}
				after = "&after=" + url.QueryEscape(p.Next)
			}
			t.Fatal("paging never ended")
			return nil
		}
		for _, c := range []struct {
			query string
			want  int
		}{
			{"limit=5", 14},
			{"tag=JIG&limit=5", 12},
			{"tag=fun", 2},
			{"text=strandbeest", 1},
			{"tracker=" + spec.String(), 2},
			{"author=" + n.ID.ID + "&tracker=" + mine.ID.String(), 12},
		} {
			if got := all(c.query); len(got) != c.want {
				t.Errorf("/v1/things?%s: %d Things, want %d", c.query, len(got), c.want)
			}
		}
	})

	t.Run("thing", func(t *testing.T) {
		var v view.Thing
		getJSON(t, n, "/v1/things/"+mine.ID.String()+"/jig-00", &v)
		if v.Latest != "1" || len(v.Versions) != 2 || len(v.Versions[0].Announcements) != 2 ||
			v.Versions[0].Thing.Title != "Jig 0 (fixed)" || !v.Versions[1].Hidden || v.Versions[1].Retracted == nil {
			t.Fatalf("thing view %+v", v)
		}
	})

	t.Run("trackers", func(t *testing.T) {
		var got []view.Tracker
		after := ""
		for range 10 {
			var p view.TrackersPage
			getJSON(t, n, "/v1/trackers?limit=1"+after, &p)
			got = append(got, p.Trackers...)
			if p.Next == "" {
				break
			}
			after = "&after=" + p.Next
		}
		byID := map[topics.TrackerID]view.Tracker{}
		for _, tr := range got {
			byID[tr.ID] = tr
		}
		if len(got) != 3 || !byID[n.ID.NodeTracker()].Node || byID[mine.ID].Title != "Workshop" {
			t.Fatalf("trackers %+v", got)
		}
		// The tracker, 12 Things, a version, an edit, a retraction.
		if h := byID[mine.ID].Heads; len(h) != 1 || h[0].Seq != 16 || h[0].Author != n.ID.ID {
			t.Fatalf("heads of %s: %+v", mine.ID, h)
		}
	})

	t.Run("tracker document", func(t *testing.T) {
		schema, err := ttnschema.Load()
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []topics.TrackerID{spec, mine.ID} {
			code, b := get(t, n, "/v1/trackers/"+id.String())
			if code != http.StatusOK {
				t.Fatalf("%s: %d %s", id, code, b)
			}
			if err := ttnschema.Validate(schema, b); err != nil {
				t.Fatalf("%s does not validate against schema.json: %v\n%s", id, err, b)
			}
			again, err := ttn.ParseDocument(b)
			if err != nil {
				t.Fatalf("%s does not import: %v", id, err)
			}
			if id == spec { // import → export → import
				a, _ := json.Marshal(doc, json.Deterministic(true))
				b, _ := json.Marshal(again, json.Deterministic(true))
				if string(a) != string(b) {
					t.Fatalf("round trip changed the document:\n%s\n%s", a, b)
				}
			} else if len(again.Things) != 12 || again.Info.Name != "workshop" {
				t.Fatalf("workshop document: %d Things, name %q", len(again.Things), again.Info.Name)
			}
		}
		if code, _ := get(t, n, "/v1/trackers/"+n.ID.NodeTracker().String()); code != http.StatusNotFound {
			t.Fatalf("node tracker as a document: %d, want 404", code)
		}
	})

	t.Run("health", func(t *testing.T) {
		var h view.Health
		getJSON(t, n, "/healthz", &h)
		if h.Status != "ok" || h.Node != n.ID.ID || !h.Ready || h.Log != n.Log.Last() {
			t.Fatalf("health %+v", h)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		value, fams := scrape(t, n)
		if v := value("ttn_log_entries"); v != float64(n.Log.Last()) {
			t.Errorf("ttn_log_entries %v, want %d", v, n.Log.Last())
		}
		if v := value("ttn_tracker_announcements", "tracker", spec.String()); v != 3 { // tracker, two Things
			t.Errorf("announcements of the spec's tracker: %v", v)
		}
		for _, name := range []string{"ttn_peers", "ttn_messages_total", "ttn_drops_total", "ttn_gap_ranges", "ttn_frozen_chains",
			"ttn_sync_pending_trackers", "ttn_search_index_behind_entries", "ttn_log_disk_bytes", "go_goroutines"} {
			if _, ok := fams[name]; !ok {
				t.Errorf("no %s", name)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, c := range []struct {
			method, path string
			code         int
			reason       string
		}{
			{"GET", "/v1/things?tracker=nope", 400, "tracker id"},
			{"GET", "/v1/things?limit=100000", 400, "limit"},
			{"GET", "/v1/things?after=%25%25", 400, "page token"},
			{"GET", "/v1/things?colour=red", 400, "unknown parameter"},
			{"GET", "/v1/things?tag=a&tag=b", 400, "given 2 times"},
			{"GET", "/v1/things/" + mine.ID.String() + "/nothing", 404, "not found"},
			{"GET", "/v1/trackers/" + topics.DeriveTrackerID(make([]byte, 32), "x").String(), 404, "not found"},
			{"GET", "/v1/trackers?limit=0", 400, "limit"},
			{"GET", "/v1/feed?since=soon", 400, "since"},
			{"POST", "/v1/things", 405, "read-only"},
			{"DELETE", "/v1/trackers/" + mine.ID.String(), 405, "read-only"},
			{"GET", "/v1/nothings", 404, "no such endpoint"}, // outside /v1/ are the pages (package web)
		} {
			req, _ := http.NewRequest(c.method, "http://"+n.HTTPAddr()+c.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var e httpapi.ErrorReply
			err = json.UnmarshalRead(resp.Body, &e)
			resp.Body.Close()
			if resp.StatusCode != c.code || err != nil || !strings.Contains(e.Error, c.reason) || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s: %d %q (%v), want %d and %q", c.method, c.path, resp.StatusCode, e.Error, err, c.code, c.reason)
			}
		}
	})
}

// TestNodes: /v1/nodes shows this node and the members it sees.
func TestNodes(t *testing.T) {
	a := nodetest.Start(t, nodeConfig(t))
	b := nodetest.Start(t, nodeConfig(t, a.GossipAddr()))
	wait.For(t, 10*time.Second, func() error {
		var v view.Nodes
		getJSON(t, a, "/v1/nodes", &v)
		if v.Self.ID != a.ID.ID || len(v.Members) != 1 || v.Members[0].ID != b.ID.ID || v.Members[0].State != "alive" || !v.Members[0].Connected {
			return fmt.Errorf("nodes %+v", v)
		}
		return nil
	})
}

// event is one Server-Sent Event.
type event struct {
	id   uint64
	data string
}

// readEvents reads events from an SSE stream into ch until it ends.
func readEvents(body io.Reader, ch chan<- event) {
	defer close(ch)
	s := bufio.NewScanner(body)
	s.Buffer(nil, 1<<20)
	var e event
	for s.Scan() {
		line := s.Text()
		switch {
		case line == "":
			if e.data != "" {
				ch <- e
			}
			e = event{}
		case strings.HasPrefix(line, "id: "):
			e.id, _ = strconv.ParseUint(line[4:], 10, 64)
		case strings.HasPrefix(line, "data: "):
			e.data += line[6:]
		}
	}
}

// feed opens /v1/feed with a Last-Event-ID (when not "") and returns its
// events and a function that disconnects.
func feed(t *testing.T, n *node.Node, query, lastID string) (<-chan event, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+n.HTTPAddr()+"/v1/feed"+query, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("feed: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	ch := make(chan event, 1024)
	go readEvents(resp.Body, ch)
	return ch, func() { cancel(); resp.Body.Close() }
}

// TestFeedResume: a feed client disconnects mid-stream, the node goes on,
// and the client reconnects with Last-Event-ID: between its two
// connections it receives every entry once, each an Entry whose cursor is
// its event ID.
func TestFeedResume(t *testing.T) {
	ctx := context.Background()
	n := nodetest.Start(t, nodeConfig(t))
	tr, err := n.CreateTracker(ctx, topics.TrackerInfo{Name: "t"}, false)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(prefix string, count int) {
		var ts []topics.Thing
		for i := range count {
			ts = append(ts, topics.Thing{ID: fmt.Sprintf("%s-%d", prefix, i), Title: prefix, Version: "1"})
		}
		if _, err := n.Publish(ctx, tr.ID, ts); err != nil {
			t.Fatal(err)
		}
	}
	publish("before", 40)

	got := map[uint64]int{}
	var last uint64
	take := func(ch <-chan event, count int) {
		t.Helper()
		for range count {
			select {
			case e, ok := <-ch:
				if !ok {
					t.Fatal("feed ended")
				}
				var en view.Entry
				if err := json.Unmarshal([]byte(e.data), &en); err != nil || en.Cursor != e.id {
					t.Fatalf("event %d: %v, entry cursor %d", e.id, err, en.Cursor)
				}
				if _, err := topics.Validate(en.Topic, en.Envelope, time.Time{}); err != nil {
					t.Fatalf("event %d: %v", e.id, err)
				}
				got[e.id]++
				last = e.id
			case <-time.After(10 * time.Second):
				t.Fatalf("no event after %d", last)
			}
		}
	}
	ch, disconnect := feed(t, n, "?since=0", "")
	take(ch, 25)
	disconnect()
	publish("while-away", 30)
	ch, disconnect = feed(t, n, "", strconv.FormatUint(last, 10))
	defer disconnect()
	publish("after", 10)
	take(ch, int(n.Log.Last()-last))
	if uint64(len(got)) != n.Log.Last() {
		t.Fatalf("received %d entries, the log holds %d", len(got), n.Log.Last())
	}
	for c, k := range got {
		if k != 1 {
			t.Fatalf("entry %d received %d times", c, k)
		}
	}

	// A tracker filter; and a bounded number of clients.
	filtered, stop := feed(t, n, "?since=0&tracker="+n.ID.NodeTracker().String(), "")
	defer stop()
	select {
	case e := <-filtered:
		var en view.Entry
		json.Unmarshal([]byte(e.data), &en)
		if en.Tracker != n.ID.NodeTracker() {
			t.Fatalf("filtered feed sent %s", en.Tracker)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("filtered feed sent nothing")
	}
	if code, b := get(t, n, "/v1/feed"); code != http.StatusServiceUnavailable {
		t.Fatalf("a third feed client: %d %s, want 503", code, b)
	}
}

// TestDiskFull: a node whose disk has less free space than --min-free stores
// nothing, refuses a publish with the reason, says so in /metrics, and goes
// on serving.
func TestDiskFull(t *testing.T) {
	cfg := nodeConfig(t)
	cfg.MinFree = 1 << 62 // more than any disk has: full from the start
	n := nodetest.Start(t, cfg)
	last := n.Log.Last()
	_, err := n.CreateTracker(context.Background(), topics.TrackerInfo{Name: "full"}, false)
	if !errors.Is(err, ttnfeed.ErrDiskFull) || !strings.Contains(err.Error(), "nothing stored") {
		t.Fatalf("publishing on a full disk: %v", err)
	}
	if n.Log.Last() != last {
		t.Fatalf("a refused publish stored something")
	}
	value, _ := scrape(t, n)
	if v := value("ttn_disk_full"); v != 1 {
		t.Errorf("ttn_disk_full %v, want 1", v)
	}
	if v := value("ttn_disk_free_bytes"); v <= 0 {
		t.Errorf("ttn_disk_free_bytes %v", v)
	}
	if v := value("ttn_log_refused_total", "why", "disk_full"); v < 1 {
		t.Errorf("refused for want of disk space: %v", v)
	}
	var h view.Health
	getJSON(t, n, "/healthz", &h)
	if h.Status != "ok" || h.Log != last {
		t.Errorf("health on a full disk: %+v", h)
	}
	if code, b := get(t, n, "/v1/trackers"); code != http.StatusOK {
		t.Fatalf("/v1/trackers on a full disk: %d %s", code, b)
	}
}
