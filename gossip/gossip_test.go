package gossip_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/thingtracker/ttn/internal/wait"

	"github.com/libp2p/go-libp2p/core/crypto"
	"go.uber.org/goleak"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/topics"
)

// store adapts the real log to gossip.Store, as the node package does.
type store struct{ *feed.Log }

func (s store) Append(ctx context.Context, a *topics.Announcement) (topics.Outcome, error) {
	r, err := s.Log.Append(ctx, a)
	return r.Status.Outcome(), err
}

// peer is one in-process node: its key, log and network node.
type peer struct {
	key       crypto.PrivKey
	raw       []byte
	log       *feed.Log
	node      *gossip.Node
	published int // Things published so far, to name the next ones
}

// start starts a node on loopback with shrunk timings, joining join.
func start(t *testing.T, join []string, tweak func(*gossip.Config)) *peer {
	t.Helper()
	return launch(t, newKey(t), openLog(t), join, tweak)
}

// openLog opens a fresh log in a temporary dir (launch closes it with the
// node).
func openLog(t *testing.T) *feed.Log {
	t.Helper()
	l, err := feed.Open(filepath.Join(t.TempDir(), "log"), feed.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// launch starts a network node with key on log l.
func launch(t *testing.T, key crypto.PrivKey, l *feed.Log, join []string, tweak func(*gossip.Config)) *peer {
	t.Helper()
	raw, _ := topics.RawPublicKey(key.GetPublic())
	cfg := gossip.Config{
		Key:           key,
		Store:         store{l},
		Listen:        []string{"/ip4/127.0.0.1/tcp/0"},
		GossipAddr:    "127.0.0.1:0",
		Join:          join,
		Heartbeat:     100 * time.Millisecond,
		ProbeInterval: 200 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := gossip.New(context.Background(), cfg)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	p := &peer{key: key, raw: raw, log: l, node: n}
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *peer) stop() {
	p.node.Close()
	p.log.Close()
}

// checkLeaks fails t if goroutines started during the test outlive it (and
// its cleanups, which stop the nodes).
func checkLeaks(t *testing.T) {
	opts := []goleak.Option{
		goleak.IgnoreCurrent(),
		// memberlist's Shutdown does not wait for a probe in flight; it
		// ends by itself at the probe timeout.
		goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
	}
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

// publish appends n Thing announcements on tracker to p's log and sends
// them; it returns their IDs.
func (p *peer) publish(t *testing.T, tracker topics.TrackerID, n int) []topics.ID {
	t.Helper()
	var ids []topics.ID
	for range n {
		p.published++
		ps, err := p.log.Publish(context.Background(), p.key, []feed.Draft{{Tracker: tracker, Kind: topics.KindThing,
			Thing: &topics.Thing{ID: fmt.Sprintf("t%d", p.published), Title: "T", Version: "1"}}})
		if err != nil {
			t.Fatal(err)
		}
		a, err := p.log.Announcement(ps[0].Cursor)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.node.Publish(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	return ids
}

// trackerIDs returns the IDs p's log holds for tracker.
func (p *peer) trackerIDs(t *testing.T, tracker topics.TrackerID) map[topics.ID]int {
	t.Helper()
	es, err := p.log.Entries(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	out := map[topics.ID]int{}
	for _, e := range es {
		if e.Tracker == tracker {
			out[e.ID]++
		}
	}
	return out
}

func TestDelivery(t *testing.T) {
	for _, size := range []int{2, 5, 16} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { delivery(t, size) })
	}
}

// delivery runs size nodes: node 0 publishes on two trackers; every other
// node follows one of them, or none. Each follower ends with exactly its
// tracker's announcements, each once; the others with none.
func delivery(t *testing.T, size int) {
	checkLeaks(t)
	nodes := []*peer{start(t, nil, nil)}
	for i := 1; i < size; i++ {
		// A sparse start: each node joins the previous one.
		nodes = append(nodes, start(t, []string{nodes[i-1].node.GossipAddr()}, nil))
	}
	pub := nodes[0]
	x, y := topics.DeriveTrackerID(pub.raw, "x"), topics.DeriveTrackerID(pub.raw, "y")
	follows := map[int]topics.TrackerID{}
	for i := 1; i < size; i++ {
		switch i % 3 {
		case 1:
			follows[i] = x
		case 2:
			follows[i] = y
		}
	}
	for _, tr := range []topics.TrackerID{x, y} {
		if err := pub.node.Follow(tr); err != nil {
			t.Fatal(err)
		}
	}
	for i, tr := range follows {
		if err := nodes[i].node.Follow(tr); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until membership has connected everyone and the publisher knows
	// every follower's subscriptions (a generous bound: 16 nodes under
	// -race on a loaded 2-core machine took over 20 s).
	wait.For(t, time.Minute, func() error {
		for i, n := range nodes {
			if got := len(n.node.Peers()); got < size-1 {
				return fmt.Errorf("node %d has %d peers", i, got)
			}
		}
		want := map[topics.TrackerID]int{}
		for _, tr := range follows {
			want[tr]++
		}
		for tr, w := range want {
			if got := pub.node.TopicPeers(tr); got < w {
				return fmt.Errorf("publisher sees %d of %d followers of %s", got, w, tr)
			}
		}
		return nil
	})

	want := map[topics.TrackerID][]topics.ID{
		x: pub.publish(t, x, 30),
		y: pub.publish(t, y, 30),
	}
	for i := 1; i < size; i++ {
		tr, following := follows[i]
		wait.For(t, 20*time.Second, func() error {
			for _, other := range []topics.TrackerID{x, y} {
				got := nodes[i].trackerIDs(t, other)
				wantN := 0
				if following && other == tr {
					wantN = len(want[other])
				}
				if len(got) != wantN {
					return fmt.Errorf("node %d holds %d announcements of %s, want %d (stats %+v)", i, len(got), other, wantN, nodes[i].node.Stats())
				}
				for id, n := range got {
					if n != 1 {
						return fmt.Errorf("node %d holds %s %d times", i, id, n)
					}
				}
			}
			return nil
		})
		if st := nodes[i].node.Stats(); st.Rejected != 0 || st.DroppedValidations != 0 {
			t.Errorf("node %d stats %+v", i, st)
		}
	}
	// Nothing reached a non-follower: it is in no mesh of those topics, so
	// nothing can arrive after the followers have everything.
	for i := 1; i < size; i++ {
		if _, following := follows[i]; !following && len(nodes[i].trackerIDs(t, x))+len(nodes[i].trackerIDs(t, y)) != 0 {
			t.Errorf("non-follower %d received announcements", i)
		}
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.stop() }()
	}
	wg.Wait()
}
