package gossip

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/internal/cputime"
	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/topics"
)

// scaleStore is a real log for the topic-scale benchmark's nodes.
type scaleStore struct{ *feed.Log }

func (s scaleStore) Append(ctx context.Context, a *topics.Announcement) (topics.Outcome, error) {
	r, err := s.Log.Append(ctx, a)
	return r.Status.Outcome(), err
}

// BenchmarkTopicScale: a node following 1k, 5k, 10k, 12k and 20k tracker
// topics, shared with three peers: its memory, its CPU idle and under light
// traffic, and the time to greet a new peer (until it sees the newcomer's
// subscriptions). GossipSub sends all of a node's subscriptions in one hello
// RPC, which pubsub refuses over its 512 KiB control limit: 12k and 20k show
// what happens past it (no peer ever learns the subscriptions), which is why
// MaxTrackers is capped (MaxTrackersLimit). A size within the cap where a
// peer is never greeted fails the benchmark. With -short it runs 1k only.
func BenchmarkTopicScale(b *testing.B) {
	sizes := []int{1000, 5000, 10000, 12000, 20000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for range b.N {
				topicScale(b, n)
			}
		})
	}
}

func scaleNode(b *testing.B, maxTrackers int) *Node {
	b.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		b.Fatal(err)
	}
	l, err := feed.Open(filepath.Join(b.TempDir(), "log"), feed.Config{CacheSize: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	n, err := New(context.Background(), Config{Key: key, Store: scaleStore{l}, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		GossipAddr: "off", MaxTrackers: maxTrackers, MaxPeerTopics: maxTrackers + 1, allowHugeHello: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	return n
}

func trackerN(i int) topics.TrackerID {
	var t topics.TrackerID
	binary.BigEndian.PutUint64(t[8:], uint64(i)+1)
	return t
}

func topicScale(b *testing.B, count int) {
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	main := scaleNode(b, count)
	for i := range count {
		if err := main.Follow(trackerN(i)); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	perNode := int64(m1.HeapInuse) - int64(m0.HeapInuse)

	peers := make([]*Node, 3)
	for i := range peers {
		peers[i] = scaleNode(b, count)
		for j := range count {
			if err := peers[i].Follow(trackerN(j)); err != nil {
				b.Fatal(err)
			}
		}
		if err := peers[i].Connect(context.Background(), main.Addrs()[0]); err != nil {
			b.Fatal(err)
		}
	}
	greeted := func(n *Node, deadline time.Duration) (time.Duration, bool) {
		start := time.Now()
		last := topics.TrackerTopic(trackerN(count - 1))
		for time.Since(start) < deadline {
			if slices.Contains(main.ps.ListPeers(last), n.host.ID()) {
				return time.Since(start), true
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(start), false
	}
	for i, p := range peers {
		if _, ok := greeted(p, 30*time.Second); !ok {
			if count <= MaxTrackersLimit {
				b.Fatalf("%d topics (within MaxTrackersLimit, %d): the main node never saw peer %d's subscriptions", count, MaxTrackersLimit, i)
			}
			b.Logf("%d topics: the main node never saw a peer's subscriptions: their hello is over pubsub's 512 KiB control limit", count)
			b.ReportMetric(0, "greeted")
			return
		}
	}
	// Meshes settle: the main node has grafted all three peers on every
	// topic (GossipSub's mesh degree is above three).
	wait.For(b, 60*time.Second, func() error {
		for i := range count {
			if got := main.mesh.count(topics.TrackerTopic(trackerN(i))); got < len(peers) {
				return fmt.Errorf("topic %d: %d mesh peers of %d", i, got, len(peers))
			}
		}
		return nil
	})

	const window = 5 * time.Second
	cpu0 := cputime.Process()
	time.Sleep(window)
	idle := float64(cputime.Process()-cpu0) / float64(window) / 4 // per node

	// Light traffic: one announcement a second on a random followed topic.
	key, _, _ := crypto.GenerateEd25519Key(nil)
	raw, _ := topics.RawPublicKey(key.GetPublic())
	cpu0 = cputime.Process()
	var prev topics.ID
	for i := range int(window / time.Second) {
		t := topics.DeriveTrackerID(raw, "light")
		if i == 0 {
			for _, n := range append(peers, main) {
				n.Follow(t)
			}
		}
		a, err := topics.Sign(key, &topics.Payload{V: 1, Kind: topics.KindThing, Tracker: t, Seq: uint64(i + 1), Prev: prev,
			Time: topics.FormatTime(time.Now()), Thing: &topics.Thing{ID: fmt.Sprint(i), Title: "T", Version: "1"}})
		if err != nil {
			b.Fatal(err)
		}
		prev = a.ID
		peers[0].cfg.Store.Append(context.Background(), a)
		peers[0].Publish(context.Background(), a)
		time.Sleep(time.Second)
	}
	busy := float64(cputime.Process()-cpu0) / float64(window) / 4

	newcomer := scaleNode(b, count)
	for j := range count {
		newcomer.Follow(trackerN(j))
	}
	if err := newcomer.Connect(context.Background(), main.Addrs()[0]); err != nil {
		b.Fatal(err)
	}
	greet, ok := greeted(newcomer, 30*time.Second)
	if !ok {
		b.Fatalf("%d topics: the newcomer was never greeted", count)
	}
	b.ReportMetric(float64(perNode)/(1<<20), "MiB/node")
	b.ReportMetric(idle, "cores-idle")
	b.ReportMetric(busy, "cores-busy")
	b.ReportMetric(float64(greet.Milliseconds()), "greet-ms")
	b.ReportMetric(1, "greeted")
	b.Logf("config: %d topics followed by a node and 3 peers (loopback TCP), 1 s heartbeat; memory %.1f MiB/node, CPU %.3f cores idle, %.3f cores at 1 msg/s, greeting a new peer %v",
		count, float64(perNode)/(1<<20), idle, busy, greet.Round(time.Millisecond))
}
