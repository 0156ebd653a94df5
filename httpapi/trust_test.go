package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/httpapi"
	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/node"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// wantError fetches path and wants an error reply with code and a reason
// naming reason.
func wantError(t *testing.T, n *node.Node, path string, code int, reason string) {
	t.Helper()
	got, b := get(t, n, path)
	var e httpapi.ErrorReply
	if err := json.Unmarshal(b, &e); got != code || err != nil || !strings.Contains(e.Error, reason) {
		t.Errorf("GET %s: %d %s (%v), want %d and %q", path, got, b, err, code, reason)
	}
}

// listedThing returns the Thing id of tracker in n's /v1/things, with
// flagged Things or not, or nil.
func listedThing(t *testing.T, n *node.Node, tracker topics.TrackerID, id string, flagged bool) *view.ThingSummary {
	t.Helper()
	path := "/v1/things?tracker=" + tracker.String()
	if flagged {
		path += "&flagged=true"
	}
	var p view.ThingsPage
	getJSON(t, n, path, &p)
	for i := range p.Things {
		if p.Things[i].ID == id {
			return &p.Things[i]
		}
	}
	return nil
}

// TestNodePage: B, with a profile and a tracker, joins A; A verifies B.
// A's /v1/nodes/{B} shows B's profile from its node record (fetched
// because A's record on B makes A follow B's node tracker), B's level on A
// and A's record; /v1/nodes/{A} shows A's profile and the record it gave;
// /v1/discovered lists B's tracker with B's level until A follows it, and
// B's Things then carry B's level.
func TestNodePage(t *testing.T) {
	ctx := context.Background()
	a := nodetest.Start(t, nodeConfig(t))
	b := nodetest.Start(t, nodeConfig(t, a.GossipAddr()))
	if _, err := b.SetProfile(ctx, datadir.Profile{Name: "Bea's bench", Description: "Jigs\nand fixtures", URL: "https://example.org/bea"}); err != nil {
		t.Fatal(err)
	}
	bench, err := b.CreateTracker(ctx, topics.TrackerInfo{Name: "bench", Title: "Bench jigs"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetProfile(ctx, datadir.Profile{Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	record, err := a.Trust(ctx, b.ID.ID, topics.TrustVerified, b.ID.Fingerprint, "met at the fair")
	if err != nil {
		t.Fatal(err)
	}

	wait.For(t, 20*time.Second, func() error {
		var d view.NodeDetail
		getJSON(t, a, "/v1/nodes/"+b.ID.ID, &d)
		switch {
		case d.ID != b.ID.ID || d.Fingerprint != b.ID.Fingerprint:
			return fmt.Errorf("B's page names %s %s", d.ID, d.Fingerprint)
		case d.Trust.Level != "verified" || d.Trust.Hops != 1 || d.Blocked:
			return fmt.Errorf("B's level on A: %+v", d.Trust)
		case len(d.TrustReceived) != 1 || d.TrustReceived[0].Author != a.ID.ID || d.TrustReceived[0].ID != record.ID ||
			d.TrustReceived[0].Level != topics.TrustVerified || d.TrustReceived[0].Note != "met at the fair":
			return fmt.Errorf("trust records on B: %+v", d.TrustReceived)
		case d.Name != "Bea's bench" || d.Description != "Jigs\nand fixtures" || d.URL != "https://example.org/bea" || d.Record == nil:
			return fmt.Errorf("B's profile on A: %q %q %q, record %v", d.Name, d.Description, d.URL, d.Record)
		case len(d.Trackers) != 1 || d.Trackers[0] != bench.ID:
			return fmt.Errorf("B's trackers on A: %v", d.Trackers)
		}
		return nil
	})
	var self view.NodeDetail
	getJSON(t, a, "/v1/nodes/"+a.ID.ID, &self)
	if self.Trust.Level != "self" || self.Name != "Ada" || len(self.TrustGiven) != 1 || self.TrustGiven[0].Subject != b.ID.ID ||
		len(self.TrustReceived) != 0 || len(self.FlagsMade) != 0 || self.Flags.Flagged {
		t.Fatalf("A's own page: %+v", self)
	}
	// The wire names, as the README's clients read them.
	_, raw := get(t, a, "/v1/nodes/"+b.ID.ID)
	for _, want := range []string{`"trust":{"level":"verified","hops":1}`, `"fingerprint":"` + b.ID.Fingerprint + `"`, `"trust_received":[{`, `"flags":{"flagged":false}`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("B's page lacks %s:\n%s", want, raw)
		}
	}

	// The listening-mode list: B's tracker, not followed, with its title
	// and B's level.
	wait.For(t, 20*time.Second, func() error {
		var ds []view.Discovered
		getJSON(t, a, "/v1/discovered", &ds)
		for _, d := range ds {
			if d.Tracker == bench.ID {
				if d.Node != b.ID.ID || d.Title != "Bench jigs" || d.Level != "verified" || d.First == "" || d.Last == "" {
					return fmt.Errorf("B's tracker listed as %+v", d)
				}
				return nil
			}
		}
		return fmt.Errorf("B's tracker not discovered yet: %+v", ds)
	})
	if err := a.Follow(ctx, datadir.FollowSet{Trackers: []topics.TrackerID{bench.ID}}); err != nil {
		t.Fatal(err)
	}
	var ds []view.Discovered
	getJSON(t, a, "/v1/discovered", &ds)
	for _, d := range ds {
		if d.Tracker == bench.ID {
			t.Fatalf("a followed tracker is still on the list: %+v", d)
		}
	}
	if _, err := b.Publish(ctx, bench.ID, []topics.Thing{{ID: "vise", Title: "Vise", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 20*time.Second, func() error {
		s := listedThing(t, a, bench.ID, "vise", false)
		if s == nil || s.Author != b.ID.ID || s.Trust != "verified" || s.Flags.Flagged {
			return fmt.Errorf("A lists B's vise as %+v, want it with B's level, verified", s)
		}
		return nil
	})

	wantError(t, a, "/v1/nodes/not-an-id", http.StatusBadRequest, "node id")
	wantError(t, a, "/v1/nodes/"+b.ID.ID+"?verbose=1", http.StatusBadRequest, "unknown parameter")
	wantError(t, a, "/v1/discovered?all=1", http.StatusBadRequest, "unknown parameter")
}

// TestFlaggedThings: a Thing the node flags itself leaves /v1/things and
// appears with flagged=true, flagged by the node at level self; its
// author's level is self too. The other Things of its tracker stay; the
// Thing's own page shows the flag; withdrawn, it is listed again.
func TestFlaggedThings(t *testing.T) {
	ctx := context.Background()
	n := nodetest.Start(t, nodeConfig(t))
	tr, err := n.CreateTracker(ctx, topics.TrackerInfo{Name: "parts"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Publish(ctx, tr.ID, []topics.Thing{{ID: "clip", Title: "Clip", Version: "1"}, {ID: "hook", Title: "Hook", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"clip", "hook"} {
		if s := listedThing(t, n, tr.ID, id, false); s == nil || s.Trust != "self" || s.Flags.Flagged || len(s.Flags.Flags) != 0 {
			t.Fatalf("before the flag, %s is listed as %+v", id, s)
		}
	}

	target := topics.FlagTarget{Tracker: tr.ID, Thing: "clip"}
	flag, err := n.Flag(ctx, topics.Flag{Target: target, Reason: topics.FlagBroken, Note: "snaps"})
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if s := listedThing(t, n, tr.ID, "clip", false); s != nil {
			return errors.New("the flagged clip is still listed")
		}
		return nil
	})
	if s := listedThing(t, n, tr.ID, "hook", false); s == nil || s.Flags.Flagged {
		t.Fatalf("hook, not flagged, is listed as %+v", s)
	}
	s := listedThing(t, n, tr.ID, "clip", true)
	if s == nil || s.Trust != "self" || !s.Flags.Flagged || len(s.Flags.Flags) != 1 {
		t.Fatalf("with flagged=true, clip is listed as %+v", s)
	}
	if f := s.Flags.Flags[0]; f.Target != target.Key() || f.Author != n.ID.ID || f.Level != "self" || !f.Counts ||
		f.Reason != topics.FlagBroken || f.Note != "snaps" || f.ID != flag.ID {
		t.Fatalf("clip's flag: %+v", f)
	}
	_, raw := get(t, n, "/v1/things?flagged=true&tracker="+tr.ID.String())
	if !strings.Contains(string(raw), `"trust":"self","flags":{"flagged":true,"flags":[{`) {
		t.Errorf("the wire form lacks trust and flags:\n%s", raw)
	}
	var th view.Thing
	getJSON(t, n, "/v1/things/"+tr.ID.String()+"/clip", &th)
	if th.Trust != "self" || !th.Flags.Flagged || len(th.Flags.Flags) != 1 || th.Flags.Flags[0].ID != flag.ID {
		t.Fatalf("clip's page: trust %q, flags %+v", th.Trust, th.Flags)
	}
	wantError(t, n, "/v1/things?flagged=maybe", http.StatusBadRequest, "flagged")
	wantError(t, n, "/v1/things?flagged=true&flagged=false", http.StatusBadRequest, "given 2 times")

	if _, err := n.Flag(ctx, topics.Flag{Target: target, Withdraw: true}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if s := listedThing(t, n, tr.ID, "clip", false); s == nil || s.Flags.Flagged {
			return fmt.Errorf("after the flag's withdrawal, clip is listed as %+v", s)
		}
		return nil
	})
}
