package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/thingtracker/ttn/control"
	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/internal/wait"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
)

// fastConfig runs a node on loopback with shrunk timings.
// fastConfig is a node's config for tests on loopback. Its follows are
// private: the tests count the entries that reach a node, and a follower
// would otherwise add its own node record (TestFollowsPublished checks
// that it does).
func fastConfig(dir string, join ...string) Config {
	return Config{
		Dir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, GossipAddr: "127.0.0.1:0", Join: join,
		Heartbeat: 100 * time.Millisecond, ProbeInterval: 200 * time.Millisecond,
		DiscoveryInterval: time.Second, ReadyTimeout: 5 * time.Second, PrivateFollows: true,
	}
}

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Leave(context.Background()) })
	if err := n.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOfflineBacklogAnnounced: what was appended while no node ran goes
// out when the node runs, and the CLI goes through the control socket
// while it runs.
func TestOfflineBacklogAnnounced(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	adir, bdir := filepath.Join(root, "a"), filepath.Join(root, "b")
	id, _, err := datadir.InitIdentity(adir)
	if err != nil {
		t.Fatal(err)
	}
	tracker := topics.DeriveTrackerID(id.RawKey, "offline")

	// b follows the tracker before it exists.
	b := startNode(t, func() Config {
		c := fastConfig(bdir)
		c.Follow = datadir.FollowSet{Trackers: []topics.TrackerID{tracker}}
		return c
	}())

	// a appends offline: no node runs on its dir.
	d, err := control.Open(adir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(control.Local); !ok {
		t.Fatalf("Open without a node gave %T", d)
	}
	if _, err := d.CreateTracker(ctx, topics.TrackerInfo{Name: "offline"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Publish(ctx, tracker, []topics.Thing{{ID: "t", Title: "T", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	d.Close()

	startNode(t, fastConfig(adir, b.GossipAddr()))
	wait.For(t, 10*time.Second, func() error {
		es, err := b.Log.Entries(0, 100)
		if err != nil || len(es) != 2 {
			return fmt.Errorf("b holds %d entries of the backlog (%v)", len(es), err)
		}
		return nil
	})

	// While a runs, the CLI's operations go through its socket.
	d, err = control.Open(adir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(*control.Client); !ok {
		t.Fatalf("Open with a running node gave %T", d)
	}
	if _, err := d.Publish(ctx, tracker, []topics.Thing{{ID: "u", Title: "U", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if b.Log.Last() != 3 {
			return fmt.Errorf("b holds %d entries", b.Log.Last())
		}
		return nil
	})
	if _, err := datadir.Open(adir, feed.Config{}); !errors.Is(err, datadir.ErrDirInUse) {
		t.Fatalf("second opener: %v", err)
	}

	// Status, through the socket.
	s, err := d.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Running || s.Peers != 1 || len(s.Members) != 1 || s.Log.Entries != 4 || len(s.Heads) != 2 || s.Gaps() != 0 || s.Forks() != 0 {
		t.Fatalf("status = %+v", s)
	}
	for _, h := range s.Heads {
		if h.Tracker == tracker && h.Seq != 3 {
			t.Errorf("head of %s at %d, want 3", tracker, h.Seq)
		}
	}
	bs, err := b.Status(ctx)
	// The backlog arrives live or, when b's follow fetched it first, by
	// sync: either way each of the three once.
	if err != nil || len(bs.Follows.Trackers) != 1 || bs.Follows.Trackers[0] != tracker || bs.Net.Accepted+bs.Sync.Stored != 3 {
		t.Fatalf("b status = %+v, %v", bs, err)
	}
}
