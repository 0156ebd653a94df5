package gossip

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"google.golang.org/protobuf/proto"

	"github.com/thingtracker/ttn/internal/cputime"
	"github.com/thingtracker/ttn/internal/wait"
)

// propConfig is one propagation run's shape.
type propConfig struct {
	nodes    int
	degree   int           // each node dials degree/2 random others: about degree links each
	latency  time.Duration // per link, each way
	rate     int           // messages per second, from random publishers
	duration time.Duration // of publishing
	size     int           // bytes of a message
}

// propResult is what one run measured.
type propResult struct {
	delivery        float64 // deliveries / expected
	p50, p99        float64 // time for a message to reach its last node, in link latencies
	copies          float64 // messages sent over links / deliveries
	bytes           float64 // RPC bytes sent (messages and control) / deliveries
	cpuPerDelivery  time.Duration
	cores           float64
	messages, nodes int
}

// BenchmarkPropagation runs our GossipSub settings and FloodSub on the same
// mocknet topologies (100 nodes, 20 ms links, random publishers at a steady
// rate) and reports the median of 3 topologies: delivery ratio, time to the
// last node (p50, p99) in link latencies, copies per delivery (counted by a
// RawTracer), bytes and CPU per delivery, and cores used. Targets: delivery
// 100%; copies ≤ 0.35 × FloodSub's; p99 ≤ 10 and median ≤ 5 link latencies.
// A topology where our GossipSub misses a delivery fails the benchmark: the
// other figures mean nothing below 100%. With -short it runs a small
// configuration once, as a smoke test.
func BenchmarkPropagation(b *testing.B) {
	cfg := propConfig{nodes: 100, degree: 20, latency: 20 * time.Millisecond, rate: 20, duration: 10 * time.Second, size: 1024}
	topologies := 3
	if testing.Short() {
		cfg.nodes, cfg.degree, cfg.duration, topologies = 20, 8, 2*time.Second, 1
	}
	for range b.N {
		var ourRuns, floodRuns []propResult
		for topo := range topologies {
			seed := uint64(topo + 1)
			ourRuns = append(ourRuns, propagate(b, cfg, seed, ours))
			floodRuns = append(floodRuns, propagate(b, cfg, seed, flood))
		}
		for topo, r := range ourRuns {
			if r.delivery < 1 {
				b.Fatalf("topology %d: gossipsub delivered %.4f of %d messages × %d nodes, not all", topo+1, r.delivery, r.messages, r.nodes-1)
			}
		}
		o, f := median(ourRuns), median(floodRuns)
		b.ReportMetric(o.delivery, "delivery")
		b.ReportMetric(o.p50, "p50-latencies")
		b.ReportMetric(o.p99, "p99-latencies")
		b.ReportMetric(o.copies, "copies/delivery")
		b.ReportMetric(o.copies/f.copies, "copies-vs-floodsub")
		b.ReportMetric(o.bytes, "bytes/delivery")
		b.ReportMetric(float64(o.cpuPerDelivery.Nanoseconds()), "cpu-ns/delivery")
		b.Logf("config: %d nodes, ~%d links each, %v links, %d msg/s of %d B for %v, median of %d topologies, GOMAXPROCS=%d",
			cfg.nodes, cfg.degree, cfg.latency, cfg.rate, cfg.size, cfg.duration, topologies, runtime.GOMAXPROCS(0))
		for _, r := range []struct {
			name string
			r    propResult
		}{{"gossipsub (ours)", o}, {"floodsub", f}} {
			b.Logf("%-16s delivery %.4f  p50 %.1f  p99 %.1f latencies  copies/delivery %.2f  bytes/delivery %.0f  cpu/delivery %v  cores %.2f  (%d messages)",
				r.name, r.r.delivery, r.r.p50, r.r.p99, r.r.copies, r.r.bytes, r.r.cpuPerDelivery, r.r.cores, r.r.messages)
		}
		b.Logf("ours vs floodsub: copies %.2f× (target ≤ 0.35)", o.copies/f.copies)
	}
}

// median returns, field by field, the median of the runs.
func median(rs []propResult) propResult {
	pick := func(f func(propResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	return propResult{
		delivery:       pick(func(r propResult) float64 { return r.delivery }),
		p50:            pick(func(r propResult) float64 { return r.p50 }),
		p99:            pick(func(r propResult) float64 { return r.p99 }),
		copies:         pick(func(r propResult) float64 { return r.copies }),
		bytes:          pick(func(r propResult) float64 { return r.bytes }),
		cpuPerDelivery: time.Duration(pick(func(r propResult) float64 { return float64(r.cpuPerDelivery) })),
		cores:          pick(func(r propResult) float64 { return r.cores }),
		messages:       rs[0].messages,
		nodes:          rs[0].nodes,
	}
}

// router is one of the compared routers; mesh says whether it builds
// meshes (GossipSub) or floods (FloodSub).
type router struct {
	new  func(ctx context.Context, h host.Host, tr pubsub.RawTracer) (*pubsub.PubSub, error)
	mesh bool
}

var (
	ours  = router{gossipRouter, true}
	flood = router{floodRouter, false}
)

// mocknetPrefix holds every mocknet peer's address (100::/64): GossipSub
// would count them all as colocated, one Sybil behind one address.
var _, mocknetPrefix, _ = net.ParseCIDR("100::/64")

func gossipRouter(ctx context.Context, h host.Host, tr pubsub.RawTracer) (*pubsub.PubSub, error) {
	return pubsub.NewGossipSub(ctx, h, append(routerOptions(time.Second, func(peer.ID) float64 { return 0 }, mocknetPrefix),
		pubsub.WithRawTracer(tr))...)
}

func floodRouter(ctx context.Context, h host.Host, tr pubsub.RawTracer) (*pubsub.PubSub, error) {
	return pubsub.NewFloodSub(ctx, h, pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(messageID), pubsub.WithRawTracer(tr))
}

// wire counts what a node sends, message copies and RPC bytes (shared by
// all nodes), and the node's own mesh peers.
type wire struct{ copies, bytes, mesh *atomic.Int64 }

func (w wire) SendRPC(rpc *pubsub.RPC, _ peer.ID) {
	w.copies.Add(int64(len(rpc.Publish)))
	w.bytes.Add(int64(proto.Size(&rpc.RPC)))
}
func (wire) AddPeer(peer.ID, protocol.ID)             {}
func (wire) RemovePeer(peer.ID)                       {}
func (wire) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (wire) OnClosedOutboundStream(peer.ID)           {}
func (wire) Join(string)                              {}
func (wire) Leave(string)                             {}
func (w wire) Graft(peer.ID, string)                  { w.mesh.Add(1) }
func (w wire) Prune(peer.ID, string)                  { w.mesh.Add(-1) }
func (wire) ValidateMessage(*pubsub.Message)          {}
func (wire) DeliverMessage(*pubsub.Message)           {}
func (wire) RejectMessage(*pubsub.Message, string)    {}
func (wire) DuplicateMessage(*pubsub.Message)         {}
func (wire) ThrottlePeer(peer.ID)                     {}
func (wire) RecvRPC(*pubsub.RPC)                      {}
func (wire) DropRPC(*pubsub.RPC, peer.ID)             {}
func (wire) UndeliverableMessage(*pubsub.Message)     {}

// propagate runs one configuration on one topology (seed) with one router.
func propagate(b *testing.B, cfg propConfig, seed uint64, r router) propResult {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: cfg.latency})
	hosts := make([]host.Host, cfg.nodes)
	for i := range hosts {
		h, err := mn.GenPeer()
		if err != nil {
			b.Fatal(err)
		}
		hosts[i] = h
	}
	// A random topology: each node links to degree/2 others.
	rng := mrand.New(mrand.NewPCG(seed, 42))
	linked := map[[2]int]bool{}
	links := make([]int, cfg.nodes) // per node
	for i := range hosts {
		for k := 0; k < cfg.degree/2; {
			j := rng.IntN(cfg.nodes)
			pair := [2]int{min(i, j), max(i, j)}
			if j == i || linked[pair] {
				continue
			}
			linked[pair] = true
			links[i]++
			links[j]++
			k++
			if _, err := mn.LinkPeers(hosts[i].ID(), hosts[j].ID()); err != nil {
				b.Fatal(err)
			}
		}
	}
	var copies, bytes atomic.Int64
	const topic = "ttn/tracker/propagationbenchmarkaaaaa"
	type arrival struct {
		node int
		at   time.Time
	}
	var mu sync.Mutex
	arrivals := map[string][]arrival{}
	topics := make([]*pubsub.Topic, cfg.nodes)
	var wg sync.WaitGroup
	meshes := make([]atomic.Int64, cfg.nodes)
	for i, h := range hosts {
		ps, err := r.new(ctx, h, wire{&copies, &bytes, &meshes[i]})
		if err != nil {
			b.Fatal(err)
		}
		t, err := ps.Join(topic)
		if err != nil {
			b.Fatal(err)
		}
		t.SetScoreParams(topicScoreParams(1, time.Second))
		sub, err := t.Subscribe(pubsub.WithBufferSize(4096))
		if err != nil {
			b.Fatal(err)
		}
		topics[i] = t
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					return
				}
				now := time.Now()
				mu.Lock()
				arrivals[m.ID] = append(arrivals[m.ID], arrival{i, now})
				mu.Unlock()
			}
		}()
	}
	for pair := range linked {
		if _, err := mn.ConnectPeers(hosts[pair[0]].ID(), hosts[pair[1]].ID()); err != nil {
			b.Fatal(err)
		}
	}
	// Hellos: every node knows each neighbour's subscription. GossipSub then
	// builds its meshes at the next heartbeat: every node has mesh peers
	// (FloodSub has no mesh).
	wait.For(b, 30*time.Second, func() error {
		for i, t := range topics {
			if got := len(t.ListPeers()); got < links[i] {
				return fmt.Errorf("node %d sees %d of its %d neighbours on the topic", i, got, links[i])
			}
			if r.mesh && meshes[i].Load() == 0 {
				return fmt.Errorf("node %d has no mesh peers", i)
			}
		}
		return nil
	})

	copies.Store(0)
	bytes.Store(0)
	cpu0, wall0 := cputime.Process(), time.Now()
	sent := map[string]time.Time{}
	n := int(cfg.duration.Seconds() * float64(cfg.rate))
	tick := time.NewTicker(time.Second / time.Duration(cfg.rate))
	for range n {
		<-tick.C
		data := make([]byte, cfg.size)
		rand.Read(data)
		id := messageID(&pb.Message{Data: data})
		mu.Lock()
		sent[id] = time.Now()
		mu.Unlock()
		if err := topics[rng.IntN(cfg.nodes)].Publish(ctx, data); err != nil {
			b.Fatal(err)
		}
	}
	tick.Stop()
	// Wait for stragglers: until every message reached every node, or 5 s.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		done := true
		for id := range sent {
			if len(arrivals[id]) < cfg.nodes {
				done = false
				break
			}
		}
		mu.Unlock()
		if done {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	wall := time.Since(wall0)
	cpu := cputime.Process() - cpu0
	cancel()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	delivered := 0
	var lasts []float64
	for id, t0 := range sent {
		as := arrivals[id]
		delivered += len(as) - 1 // the publisher's own delivery is not a delivery
		last := t0
		for _, a := range as {
			if a.at.After(last) {
				last = a.at
			}
		}
		if len(as) == cfg.nodes {
			lasts = append(lasts, float64(last.Sub(t0))/float64(cfg.latency))
		}
	}
	slices.Sort(lasts)
	pct := func(p float64) float64 {
		if len(lasts) == 0 {
			return math.Inf(1)
		}
		return lasts[min(len(lasts)-1, int(p*float64(len(lasts))))]
	}
	expected := len(sent) * (cfg.nodes - 1)
	return propResult{
		delivery:       float64(delivered) / float64(expected),
		p50:            pct(0.5),
		p99:            pct(0.99),
		copies:         float64(copies.Load()) / float64(max(delivered, 1)),
		bytes:          float64(bytes.Load()) / float64(max(delivered, 1)),
		cpuPerDelivery: cpu / time.Duration(max(delivered, 1)),
		cores:          cpu.Seconds() / wall.Seconds(),
		messages:       len(sent),
		nodes:          cfg.nodes,
	}
}
