package natsapi_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go"

	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// TestBadRequests: every malformed request gets an error reply with its
// code and a reason, and changes nothing.
func TestBadRequests(t *testing.T) {
	n := nodetest.Start(t, nodeConfig(t, &natsapi.Config{Addr: "0", Token: "tok", PublishRate: 1, PublishBurst: 3}))
	tr := createTracker(t, n, "t")
	nc := connect(t, n, nats.Token("tok"))
	last := n.Log.Last()
	for _, c := range []struct {
		subject, body, code, reason string
	}{
		{"ttn.api.publish", `{"tracker":`, "400", "bad request"},
		{"ttn.api.publish", `{"tracker":"nope","thing":{}}`, "400", "tracker id"},
		{"ttn.api.publish", `{"tracker":"` + tr.String() + `"}`, "400", "needs a thing"},
		{"ttn.api.publish", `{"tracker":"` + tr.String() + `","thing":{"id":"a","title":"A"},"things":[{"id":"b","title":"B"}]}`, "400", "not both"},
		{"ttn.api.publish", `{"tracker":"` + tr.String() + `","thing":{"id":"a\u001b[2J","title":"A"}}`, "400", "control character"},
		{"ttn.api.publish", `{"tracker":"` + tr.String() + `","thing":{"id":"a","title":"A","version":2}}`, "400", "want a string"},
		{"ttn.api.publish", `{"tracker":"` + tr.String() + `","thing":{"title":"no id"}}`, "400", "id"},
		{"ttn.api.publish", `{"tracker":"` + tr.String() + `","things":[{"id":"a","title":"A"},{"id":"b","title":"B"},{"id":"c","title":"C"},{"id":"d","title":"D"}]}`, "400", "at most 3"},
		{"ttn.api.publish", `{"tracker":"` + n.ID.NodeTracker().String() + `","thing":{"id":"a","title":"A"}}`, "400", "node tracker"},
		{"ttn.api.publish", `{"tracker":"` + tr.String() + `","thing":{"id":"a","title":"A"},"sign":true}`, "400", "unknown"},
		{"ttn.api.history", `[]`, "400", "bad request"},
		{"ttn.api.history", `{"after":-1}`, "400", "bad request"},
		{"ttn.api.history", `{"limit":100000}`, "400", "limit"},
		{"ttn.api.thing", `{"tracker":"` + tr.String() + `"}`, "400", "needs a tracker and an id"},
		{"ttn.api.thing", `{"tracker":"` + tr.String() + `","id":"missing"}`, "404", "not found"},
		{"ttn.api.things", `{"author":"me"}`, "400", "author"},
		{"ttn.api.things", `{"after":"%%%"}`, "400", "page token"},
		{"ttn.api.things", `{"limit":501}`, "400", "limit"},
		{"ttn.api.things", `{"tag":"` + strings.Repeat("x", 300) + `"}`, "400", "tag"},
		{"ttn.api.search", `{"limit":201}`, "400", "limit"},
		{"ttn.api.search", `{"from":-1}`, "400", "from"},
		{"ttn.api.search", `{"author":"me"}`, "400", "author"},
		{"ttn.api.search", `{"text":"a","fuzzy":true}`, "400", "unknown"},
		{"ttn.api.status", `{"verbose":true}`, "400", "unknown"},
	} {
		code, reason := request(t, nc, c.subject, []byte(c.body), nil)
		if code != c.code || !strings.Contains(reason, c.reason) || strings.ContainsAny(reason, "\r\n") {
			t.Errorf("%s %s: %s %q, want %s and %q", c.subject, c.body, code, reason, c.code, c.reason)
		}
	}
	if n.Log.Last() != last {
		t.Fatal("bad requests changed the log")
	}

	// The rate limit: a burst of 3 Things, then one a second.
	var r view.PublishResult
	if code, reason := request(t, nc, "ttn.api.publish", []byte(`{"tracker":"`+tr.String()+`","things":[{"id":"a","title":"A"},{"id":"b","title":"B"},{"id":"c","title":"C"}]}`), &r); code != "" || len(r.Published) != 3 {
		t.Fatalf("burst: %s %s %+v", code, reason, r)
	}
	code, reason := request(t, nc, "ttn.api.publish", []byte(`{"tracker":"`+tr.String()+`","thing":{"id":"d","title":"D"}}`), nil)
	if code != "429" || !strings.Contains(reason, "retry in") {
		t.Fatalf("over the rate: %s %q", code, reason)
	}
	st, _ := n.Status(context.Background())
	if st.NATS.PublishLimited != 1 || st.NATS.RequestErrors < 17 {
		t.Fatalf("stats %+v", st.NATS)
	}
}

// TestHistorySeam: a plugin that subscribes, then pages through history
// while the node keeps appending, ends with every entry once: no gap and no
// duplicate where history meets the live feed.
func TestHistorySeam(t *testing.T) {
	n := nodetest.Start(t, nodeConfig(t, &natsapi.Config{Addr: "0"}))
	tr := createTracker(t, n, "t")
	publish(t, n, tr, things("before", 150))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // keeps appending while the plugin catches up
		defer wg.Done()
		for i := range 30 {
			if _, err := n.Publish(context.Background(), tr, things(fmt.Sprintf("during%d", i), 10)); err != nil {
				t.Error(err) // not Fatal: this is not the test's goroutine
				return
			}
			time.Sleep(2 * time.Millisecond) // spread the appends over the catch-up
		}
	}()

	nc := connect(t, n)
	got := catchUp(t, nc, 0, 7, func() bool {
		wg.Wait()
		return true
	}, n.Log.Last)
	want := n.Log.Last()
	if uint64(len(got)) != want {
		t.Fatalf("got %d entries, want %d", len(got), want)
	}
	for i, c := range got {
		if c != uint64(i+1) {
			t.Fatalf("entry %d has cursor %d: a gap or a duplicate", i, c)
		}
	}
}

// catchUp is what a plugin does to miss nothing: subscribe to the live
// feed first, then page through history after cursor; live messages at or
// before the last history entry are dropped. It returns the cursors
// received in order, once done() is true and every entry up to last() has
// arrived.
func catchUp(t *testing.T, nc *nats.Conn, after uint64, limit int, done func() bool, last func() uint64) []uint64 {
	t.Helper()
	sub, err := nc.SubscribeSync(natsapi.AnnouncePrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	nc.Flush()
	var got []uint64
	for range 10000 {
		var page natsapi.HistoryPage
		if code, reason := request(t, nc, "ttn.api.history", natsapi.HistoryRequest{After: after, Limit: limit}, &page); code != "" {
			t.Fatalf("history: %s %s", code, reason)
		}
		for _, raw := range page.Entries {
			var e view.Entry
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			got = append(got, e.Cursor)
		}
		after = page.Next
		if len(page.Entries) == 0 {
			break
		}
	}
	for deadline := time.Now().Add(20 * time.Second); !done() || after < last(); {
		if time.Now().After(deadline) {
			t.Fatalf("live feed stuck at %d of %d", after, last())
		}
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("live feed after %d: %v", after, err)
		}
		e := checkMessage(t, m)
		if e.Cursor <= after {
			continue // history had it
		}
		got = append(got, e.Cursor)
		after = e.Cursor
	}
	return got
}

// TestQueries: ttn.api.things filters and pages; ttn.api.thing shows a
// Thing's versions, edits and retractions.
func TestQueries(t *testing.T) {
	ctx := context.Background()
	n := nodetest.Start(t, nodeConfig(t, &natsapi.Config{Addr: "0"}))
	a, b := createTracker(t, n, "a"), createTracker(t, n, "b")
	publish(t, n, a, things("bench", 12, "Furniture"))
	publish(t, n, b, things("clamp", 9, "tools"))
	publish(t, n, b, []topics.Thing{{ID: "vise", Title: "Bench vise", Version: "1", Tags: []string{"tools"}}})
	nc := connect(t, n)
	nodetest.WaitIndexed(t, n) // text queries read the search index

	all := func(q view.ThingsQuery) []view.ThingSummary {
		var out []view.ThingSummary
		for range 100 {
			var p view.ThingsPage
			if code, reason := request(t, nc, "ttn.api.things", q, &p); code != "" {
				t.Fatalf("things %+v: %s %s", q, code, reason)
			}
			out = append(out, p.Things...)
			if p.Next == "" {
				return out
			}
			q.After = p.Next
		}
		t.Fatal("paging never ended")
		return nil
	}
	for _, c := range []struct {
		q    view.ThingsQuery
		want int
	}{
		{view.ThingsQuery{Limit: 4}, 22},
		{view.ThingsQuery{Tracker: b, Limit: 3}, 10},
		{view.ThingsQuery{Tag: "furniture"}, 12},
		{view.ThingsQuery{Tag: "tools", Text: "BENCH"}, 1},
		{view.ThingsQuery{Text: "number 1", Limit: 2}, 2}, // words, not substrings: bench 1, clamp 1
		{view.ThingsQuery{Author: n.ID.ID}, 22},
		{view.ThingsQuery{Author: "12D3KooWHdJd7vmJ7KqSuRvDVPEVMQ27LbNoSWDVt2F4jf8pXLNS"}, 0},
	} {
		got := all(c.q)
		if len(got) != c.want {
			t.Errorf("query %+v: %d Things, want %d", c.q, len(got), c.want)
		}
		for _, s := range got {
			if s.Thing == nil || s.Author != n.ID.ID || s.Version != "1" {
				t.Errorf("query %+v: summary %+v", c.q, s)
			}
		}
	}

	// Versions, an edit, a retraction.
	v2, err := n.Publish(ctx, b, []topics.Thing{{ID: "vise", Title: "Bench vise II", Version: "2"}})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, n, b, []topics.Thing{{ID: "vise", Title: "Bench vise (fixed)", Version: "1", Tags: []string{"tools"}}})
	if _, err := n.Retract(ctx, v2[0].ID); err != nil {
		t.Fatal(err)
	}
	var v view.Thing
	if code, reason := request(t, nc, "ttn.api.thing", natsapi.ThingRequest{Tracker: b, ID: "vise"}, &v); code != "" {
		t.Fatalf("thing: %s %s", code, reason)
	}
	if v.Latest != "1" || len(v.Versions) != 2 || len(v.Versions[0].Announcements) != 2 || !v.Versions[1].Hidden ||
		v.Versions[1].Retracted == nil || v.Versions[0].Thing.Title != "Bench vise (fixed)" || v.Author != n.ID.ID {
		t.Fatalf("thing view %+v", v)
	}
}
