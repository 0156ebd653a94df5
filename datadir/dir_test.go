package datadir

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
)

func openDir(t *testing.T) *Dir {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "node")
	if _, _, err := InitIdentity(dir); err != nil {
		t.Fatal(err)
	}
	c, err := Open(dir, feed.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestIdentity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "node")
	id, created, err := InitIdentity(dir)
	if err != nil || !created {
		t.Fatalf("InitIdentity: %v %v", created, err)
	}
	again, created, err := InitIdentity(dir)
	if err != nil || created || again.ID != id.ID || again.Fingerprint != id.Fingerprint {
		t.Fatalf("second InitIdentity: %+v %v %v", again, created, err)
	}
	if !strings.HasPrefix(id.ID, "12D3KooW") || len(strings.Split(id.Fingerprint, "-")) != 7 {
		t.Fatalf("identity %s %s", id.ID, id.Fingerprint)
	}
	var pem bytes.Buffer
	if err := ExportKey(dir, &pem); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(pem.String(), id.ID) || !strings.Contains(pem.String(), "TTN NODE KEY") {
		t.Fatalf("export = %q", pem.String())
	}
	other := filepath.Join(t.TempDir(), "other")
	imported, err := ImportKey(other, bytes.NewReader(pem.Bytes()))
	if err != nil || imported.ID != id.ID {
		t.Fatalf("ImportKey: %v %v", imported, err)
	}
	if _, err := ImportKey(other, bytes.NewReader(pem.Bytes())); err == nil {
		t.Fatal("ImportKey replaced an identity")
	}
	if _, err := ImportKey(t.TempDir(), strings.NewReader("junk")); err == nil {
		t.Fatal("ImportKey accepted junk")
	}
	if _, err := LoadIdentity(t.TempDir()); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("LoadIdentity of an empty dir: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, keyFile), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(dir); err == nil {
		t.Fatal("loaded a key readable by the group")
	}
}

func TestTrackersAndNodeRecord(t *testing.T) {
	ctx := context.Background()
	c := openDir(t)
	a, err := c.CreateTracker(ctx, topics.TrackerInfo{Name: "a"}, false)
	if err != nil || !a.Created {
		t.Fatalf("create a: %+v %v", a, err)
	}
	b, err := c.CreateTracker(ctx, topics.TrackerInfo{Name: "b", Title: "B"}, false)
	if err != nil || !b.Created {
		t.Fatalf("create b: %+v %v", b, err)
	}
	// Creating again changes nothing, even with another title.
	last := c.Log.Last()
	if r, err := c.CreateTracker(ctx, topics.TrackerInfo{Name: "b", Title: "other"}, false); err != nil || r.Created || r.ID != b.ID || c.Log.Last() != last {
		t.Fatalf("re-create b: %+v %v", r, err)
	}
	// The node record lists both.
	nt, err := c.Log.Tracker(c.ID.NodeTracker())
	if err != nil || !nt.Node {
		t.Fatalf("node tracker: %+v %v", nt, err)
	}
	ann, err := c.Log.Announcement(nt.Info.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	want := []topics.TrackerID{a.ID, b.ID}
	slices.SortFunc(want, func(x, y topics.TrackerID) int { return bytes.Compare(x[:], y[:]) })
	if !slices.Equal(ann.Payload.NodeInfo.Trackers, want) {
		t.Fatalf("node record lists %v, want %v", ann.Payload.NodeInfo.Trackers, want)
	}
	// Update replaces the description.
	if r, err := c.CreateTracker(ctx, topics.TrackerInfo{Name: "b", Title: "B2"}, true); err != nil || !r.Updated {
		t.Fatalf("update b: %+v %v", r, err)
	}
	if _, err := c.CreateTracker(ctx, topics.TrackerInfo{}, false); err == nil {
		t.Fatal("created a tracker without a name")
	}
}

func TestPublishChecks(t *testing.T) {
	ctx := context.Background()
	c := openDir(t)
	other := openDir(t)
	theirs, err := other.CreateTracker(ctx, topics.TrackerInfo{Name: "x"}, false)
	if err != nil {
		t.Fatal(err)
	}
	// Learn the other node's tracker, as sync would.
	es, _ := other.Log.Entries(0, 10)
	var envs [][]byte
	for _, e := range es {
		envs = append(envs, e.Envelope)
	}
	if r, err := c.Ingest(ctx, envs); err != nil || r.Stored != len(envs) {
		t.Fatalf("ingest: %+v %v", r, err)
	}
	thing := []topics.Thing{{ID: "t", Title: "T", Version: "1"}}
	for _, tc := range []struct {
		name    string
		tracker topics.TrackerID
		why     string
	}{
		{"unknown", topics.DeriveTrackerID(c.ID.RawKey, "nope"), "unknown tracker"},
		{"another node's", theirs.ID, "belongs to"},
		{"node tracker", c.ID.NodeTracker(), "node records"},
	} {
		if _, err := c.Publish(ctx, tc.tracker, thing); err == nil || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	mine, _ := c.CreateTracker(ctx, topics.TrackerInfo{Name: "mine"}, false)
	last := c.Log.Last()
	bad := append(slices.Clone(thing), topics.Thing{ID: "u", Version: "1"})
	if _, err := c.Publish(ctx, mine.ID, bad); err == nil || c.Log.Last() != last {
		t.Fatalf("publish with a bad Thing: %v (log %d → %d)", err, last, c.Log.Last())
	}
	// Retract refuses what is not one of this node's Things.
	if _, err := c.Retract(ctx, es[0].ID); err == nil || !strings.Contains(err.Error(), "not by this node") {
		t.Fatalf("retract another's: %v", err)
	}
}

func TestImportUpdatesTracker(t *testing.T) {
	ctx := context.Background()
	c := openDir(t)
	b, err := os.ReadFile(filepath.Join("..", "internal", "ttnschema", "spec", "example-tracker.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ttn.ParseDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Import(ctx, doc)
	if err != nil || !r.Tracker.Created || len(r.Published) != 2 {
		t.Fatalf("import: %+v %v", r, err)
	}
	doc.Info.Description = "changed"
	doc.Things[1].Title = "changed"
	r, err = c.Import(ctx, doc)
	if err != nil || !r.Tracker.Updated || r.Published[0].New || !r.Published[1].New {
		t.Fatalf("re-import with changes: %+v %v", r, err)
	}
	things, err := c.Log.Things(r.Tracker.ID)
	if err != nil || len(things) != 2 {
		t.Fatalf("things: %v %v", things, err)
	}
	for _, th := range things {
		if th.Latest() == nil || th.Latest().Version != ttn.DefaultVersion {
			t.Fatalf("thing %s: %+v", th.Thing, th.Latest())
		}
	}
}

// TestPublishParents: a Thing's parents must name Things the node holds
// (or earlier in the same publish), unless unknown parents are allowed;
// refused, nothing is published.
func TestPublishParents(t *testing.T) {
	ctx := context.Background()
	c := openDir(t)
	tr, err := c.CreateTracker(ctx, topics.TrackerInfo{Name: "designs"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, tr.ID, []topics.Thing{{ID: "base", Title: "Base", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	last := c.Log.Last()
	for name, parent := range map[string]topics.Parent{
		"an unknown Thing":           {Thing: "typo"},
		"an unknown version":         {Thing: "base", Version: "7"},
		"an unknown announcement":    {Thing: "base", Announcement: topics.IDOf([]byte("nowhere"))},
		"a Thing on another tracker": {Tracker: topics.DeriveTrackerID(make([]byte, 32), "x"), Thing: "base"},
	} {
		_, err := c.Publish(ctx, tr.ID, []topics.Thing{{ID: "child", Title: "Child", Version: "1", Parents: []topics.Parent{parent}}})
		if !errors.Is(err, ErrUnknownParent) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if c.Log.Last() != last {
		t.Fatal("a refused publish appended something")
	}
	for name, things := range map[string][]topics.Thing{
		"a held version": {{ID: "a", Title: "A", Version: "1", Parents: []topics.Parent{{Thing: "base", Version: "1"}}}},
		"an earlier Thing of the same publish": {{ID: "b", Title: "B", Version: "1"},
			{ID: "c", Title: "C", Version: "1", Parents: []topics.Parent{{Thing: "b"}}}},
	} {
		if _, err := c.Publish(ctx, tr.ID, things); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := c.Publish(ctx, tr.ID, []topics.Thing{{ID: "d", Title: "D", Version: "1", Parents: []topics.Parent{{Thing: "typo"}}}},
		PublishOptions{AllowUnknownParent: true}); err != nil {
		t.Errorf("with unknown parents allowed: %v", err)
	}
}
