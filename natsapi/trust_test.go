package natsapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// otherAuthor makes a data dir of another node with a tracker and a Thing,
// and returns its identity and its log's envelopes, as 'announcer log'
// would export them.
func otherAuthor(t *testing.T) (*datadir.Identity, [][]byte) {
	t.Helper()
	ctx := context.Background()
	path := t.TempDir()
	if _, _, err := datadir.InitIdentity(path); err != nil {
		t.Fatal(err)
	}
	d, err := datadir.Open(path, feed.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tr, err := d.CreateTracker(ctx, topics.TrackerInfo{Name: "elsewhere"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Publish(ctx, tr.ID, []topics.Thing{{ID: "gear", Title: "Gear", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	es, err := d.Log.Entries(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	envs := make([][]byte, len(es))
	for i := range es {
		envs[i] = es[i].Envelope
	}
	return d.ID, envs
}

// TestNodeRequest: ttn.api.node answers what the node holds about a node
// (its own detail, and another's with the node's record on it);
// ttn.api.discovered answers a list; malformed requests get a 400 error
// reply.
func TestNodeRequest(t *testing.T) {
	ctx := context.Background()
	n := nodetest.Start(t, nodeConfig(t, &natsapi.Config{Addr: "0"}))
	other, _ := otherAuthor(t)
	if _, err := n.SetProfile(ctx, datadir.Profile{Name: "Ada", Description: "Workshop"}); err != nil {
		t.Fatal(err)
	}
	record, err := n.Trust(ctx, other.ID, topics.TrustTrusted, "", "a colleague")
	if err != nil {
		t.Fatal(err)
	}
	nc := connect(t, n)

	var self view.NodeDetail
	if code, reason := request(t, nc, "ttn.api.node", natsapi.NodeRequest{ID: n.ID.ID}, &self); code != "" {
		t.Fatalf("ttn.api.node on itself: %s %s", code, reason)
	}
	if self.ID != n.ID.ID || self.Fingerprint != n.ID.Fingerprint || self.Trust.Level != "self" || self.Name != "Ada" ||
		self.Description != "Workshop" || self.Record == nil || len(self.TrustGiven) != 1 || self.TrustGiven[0].ID != record.ID {
		t.Fatalf("ttn.api.node on itself: %+v", self)
	}
	wait.For(t, 10*time.Second, func() error {
		var d view.NodeDetail
		if code, reason := request(t, nc, "ttn.api.node", []byte(`{"id":"`+other.ID+`"}`), &d); code != "" {
			return fmt.Errorf("ttn.api.node: %s %s", code, reason)
		}
		if d.ID != other.ID || d.Fingerprint != other.Fingerprint || d.Trust.Level != "trusted" || d.Trust.Hops != 1 ||
			len(d.TrustReceived) != 1 || d.TrustReceived[0].Author != n.ID.ID || d.TrustReceived[0].Note != "a colleague" || d.Record != nil {
			return fmt.Errorf("ttn.api.node on the other node: %+v", d)
		}
		return nil
	})

	var ds []view.Discovered
	if code, reason := request(t, nc, "ttn.api.discovered", []byte(`{}`), &ds); code != "" || ds == nil || len(ds) != 0 {
		t.Fatalf("ttn.api.discovered: %s %s %#v, want an empty list", code, reason, ds)
	}

	last := n.Log.Last()
	for _, c := range []struct{ subject, body, reason string }{
		{"ttn.api.node", `{"id":"not-a-node"}`, "node id"},
		{"ttn.api.node", `{}`, "node id"},
		{"ttn.api.node", ``, "node id"},
		{"ttn.api.node", `{"id":"` + n.ID.ID + `","verbose":true}`, "unknown"},
		{"ttn.api.node", `["` + n.ID.ID + `"]`, "bad request"},
		{"ttn.api.discovered", `{"all":true}`, "unknown"},
	} {
		code, reason := request(t, nc, c.subject, []byte(c.body), nil)
		if code != "400" || !strings.Contains(reason, c.reason) {
			t.Errorf("%s %s: %s %q, want 400 and %q", c.subject, c.body, code, reason, c.reason)
		}
	}
	if n.Log.Last() != last {
		t.Fatal("the requests changed the log")
	}
}

// TestTrustHeader: the fan-out message of every announcement carries its
// author's level on the node in Ttn-Trust: self for the node's own, and
// for another's, the level the node's record gives it.
func TestTrustHeader(t *testing.T) {
	ctx := context.Background()
	n := nodetest.Start(t, nodeConfig(t, &natsapi.Config{Addr: "0"}))
	other, envs := otherAuthor(t)
	nc := connect(t, n)
	sub, err := nc.SubscribeSync(natsapi.AnnouncePrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// The node's own: a tracker and a Thing.
	tr := createTracker(t, n, "mine")
	publish(t, n, tr, things("own", 1))
	// Another's, once the node trusts it.
	if _, err := n.Trust(ctx, other.ID, topics.TrustTrusted, "", ""); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if l := n.TrustLevel(other.ID); l != "trusted" {
			return fmt.Errorf("the other node is %s, want trusted", l)
		}
		return nil
	})
	if r, err := n.Ingest(ctx, envs); err != nil || r.Stored != len(envs) {
		t.Fatalf("ingest: %+v %v", r, err)
	}

	want := map[string]string{n.ID.ID: "self", other.ID: "trusted"}
	seen := map[string]int{}
	for last, cursor := n.Log.Last(), uint64(0); cursor < last; {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("after cursor %d of %d (%v): %v", cursor, last, seen, err)
		}
		e := checkMessage(t, m)
		cursor = e.Cursor
		if got := m.Header.Get(natsapi.HeaderTrust); got != want[e.Author] {
			t.Errorf("%s %d by %s: Ttn-Trust %q, want %q", e.Kind, e.Cursor, e.Author, got, want[e.Author])
		}
		seen[e.Author]++
	}
	// Own: the tracker, its Thing, the trust record (and node records);
	// the other's: its tracker and Thing.
	if seen[n.ID.ID] < 3 || seen[other.ID] != len(envs) {
		t.Fatalf("messages by author %v", seen)
	}
}
