package gossip

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	bconnmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/thingtracker/ttn/topics"
)

// scaleConfig is one discovery-at-scale run's shape.
type scaleConfig struct {
	nodes        int           // followers' candidates, bootstrap nodes apart
	trackers     int           // each followed by followersPer random nodes
	followersPer int           //
	boot         int           // bootstrap nodes (DHT servers, follow nothing)
	maxPeers     int           // connection manager's high water, per node
	lowWater     int           // what it trims down to
	bootMaxPeers int           // the bootstrap nodes' high water (Config.MaxPeers' default)
	grace        time.Duration // connection manager's grace period for new connections
	silence      time.Duration // between two trims
	heartbeat    time.Duration // GossipSub's
	latency      time.Duration // per mocknet link, each way
	converge     time.Duration // deadline for every follower to have a mesh peer
	deliver      time.Duration // deadline for a message to reach every follower
}

// scaleResult is what one run measured.
type scaleResult struct {
	follows     int           // (node, tracker) pairs
	noTopicPeer int           // follows whose node sees no peer on the topic
	noMeshPeer  int           // follows whose node has no mesh peer on the topic
	delivery    float64       // deliveries / (followers - publisher), over all trackers
	converge    time.Duration // from the last node's start to every follow meshed
	converged   bool          //
	setup       time.Duration // starting every node
	finds       int64         // discovery FindPeers on tracker topics, until converged
	advertises  int64         // discovery Advertise on tracker topics, until converged
	findsTotal  int64         // FindPeers until the messages were delivered
	settle      time.Duration // then until every node is within MaxPeers, meshes counted again
	over        int           // nodes still over MaxPeers connections when publishing
	conns       float64       // connected peers per node (bootstrap nodes apart) when publishing
	maxConns    int           // the most of a node
}

// BenchmarkDiscoveryAtScale is issue #13's "Discovery at scale": N nodes on
// mocknet, each bounded by a connection manager to MaxPeers 16, each a DHT
// server joined through 3 bootstrap nodes only, running our GossipSub
// settings with the DHT topic discovery (topicDiscovery). Trackers are
// followed by 10 random nodes each, one tracker per 10 nodes (50 for 500
// nodes): a node follows one tracker on average, so a tracker's followers
// are 2% of the network and random peering rarely puts two of them
// together. It waits until every follower has a mesh peer on each followed
// topic, publishes one message per tracker from one of its followers, and
// measures delivery. Then the same nodes and follows run today's baseline,
// random peering without DHT discovery (each node dials random peers up to
// 16, as membership dialling does past one memberlist). The DHT variant
// must leave no follower without a topic peer and deliver 100%, or the
// benchmark fails; the baseline is expected to fall short and only
// reported. TTN_SCALE_NODES sets N (default 500); -short runs 60.
func BenchmarkDiscoveryAtScale(b *testing.B) {
	cfg := scaleConfig{
		nodes:        500,
		followersPer: 10,
		boot:         3,
		maxPeers:     16,
		lowWater:     12,
		bootMaxPeers: 64,
		// Shrunk timings for the simulation: a 1 s heartbeat and a 1 min
		// grace period in the node, 200 ms and 10 s here.
		grace:     10 * time.Second,
		silence:   2 * time.Second,
		heartbeat: 200 * time.Millisecond,
		latency:   10 * time.Millisecond,
		converge:  3 * time.Minute,
		deliver:   20 * time.Second,
	}
	if testing.Short() {
		cfg.nodes = 60
	}
	if s := os.Getenv("TTN_SCALE_NODES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2*cfg.followersPer {
			b.Fatalf("TTN_SCALE_NODES=%q: want a number ≥ %d", s, 2*cfg.followersPer)
		}
		cfg.nodes = n
	}
	cfg.trackers = max(1, cfg.nodes/cfg.followersPer)
	for range b.N {
		b.Logf("config: %d nodes + %d bootstrap nodes on mocknet (%v links), connection manager %d/%d (low/high water; bootstrap nodes %d/%d), grace %v, trim every %v; "+
			"%d trackers × %d random followers; GossipSub: routerOptions with heartbeat %v (shrunk from 1 s for the simulation); DHT: %s, server mode, bootstrapped from the %d bootstrap nodes; GOMAXPROCS=%d",
			cfg.nodes, cfg.boot, cfg.latency, cfg.lowWater, cfg.maxPeers, cfg.bootMaxPeers*3/4, cfg.bootMaxPeers, cfg.grace, cfg.silence,
			cfg.trackers, cfg.followersPer, cfg.heartbeat, DHTPrefix, cfg.boot, runtime.GOMAXPROCS(0))
		follows := pickFollows(cfg, 1)
		d := discoverAtScale(b, cfg, follows, true)
		logScale(b, "dht discovery", d)
		base := discoverAtScale(b, cfg, follows, false)
		logScale(b, "random peering", base)

		b.ReportMetric(float64(d.noTopicPeer), "dht-no-topic-peer")
		b.ReportMetric(d.delivery, "dht-delivery")
		b.ReportMetric(d.converge.Seconds(), "dht-converge-s")
		b.ReportMetric(float64(d.finds), "dht-findpeers")
		b.ReportMetric(float64(d.advertises), "dht-advertises")
		b.ReportMetric(d.conns, "dht-peers/node")
		b.ReportMetric(float64(d.over), "dht-nodes-over-maxpeers")
		b.ReportMetric(float64(base.noTopicPeer), "base-no-topic-peer")
		b.ReportMetric(base.delivery, "base-delivery")
		b.ReportMetric(base.conns, "base-peers/node")

		var errs []error
		// What counts is how the network ends (counted again after the
		// settling), not whether a loaded machine got there within the
		// convergence wait, which is reported.
		if d.noMeshPeer > 0 {
			errs = append(errs, fmt.Errorf("dht discovery: %d of %d follows without a mesh peer", d.noMeshPeer, d.follows))
		}
		if d.noTopicPeer > 0 {
			errs = append(errs, fmt.Errorf("dht discovery: %d of %d follows without a topic peer", d.noTopicPeer, d.follows))
		}
		if d.delivery < 1 {
			errs = append(errs, fmt.Errorf("dht discovery: delivered %.4f, not all", d.delivery))
		}
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
	}
}

func logScale(b *testing.B, name string, r scaleResult) {
	b.Helper()
	b.Logf("%-14s: setup %v; converged %v in %v, then within MaxPeers after %v more (%d nodes still over); follows %d, without a topic peer %d, without a mesh peer %d; delivery %.4f; "+
		"discovery FindPeers %d, Advertise %d (tracker topics, until converged; FindPeers %d until delivered); peers per node %.1f (max %d) when publishing",
		name, r.setup.Round(time.Millisecond), r.converged, r.converge.Round(time.Millisecond), r.settle.Round(time.Millisecond), r.over,
		r.follows, r.noTopicPeer, r.noMeshPeer, r.delivery, r.finds, r.advertises, r.findsTotal, r.conns, r.maxConns)
}

// pickFollows returns, for each tracker, its followers: distinct random
// nodes.
func pickFollows(cfg scaleConfig, seed uint64) [][]int {
	rng := mrand.New(mrand.NewPCG(seed, 13))
	follows := make([][]int, cfg.trackers)
	for t := range follows {
		follows[t] = rng.Perm(cfg.nodes)[:cfg.followersPer]
	}
	return follows
}

// boundedHost is a mocknet host with a connection manager. Mocknet builds
// its hosts without one (basichost's no-op manager; PeerOptions has no
// field for it), so the manager is attached here: it hears of every
// connection through the network's notifications and trims by closing
// them, and the DHT and pubsub tag and protect peers through
// ConnManager(), as on a real host.
type boundedHost struct {
	host.Host
	cm connmgr.ConnManager
}

func (h boundedHost) ConnManager() connmgr.ConnManager { return h.cm }

// countingDiscovery counts the DHT operations topicDiscovery makes, under
// its pacing and retries: each FindPeers a provider lookup, each Advertise a
// provider record put.
type countingDiscovery struct {
	discovery.Discovery
	finds, advertises *atomic.Int64
}

func (c countingDiscovery) Advertise(ctx context.Context, ns string, opts ...discovery.Option) (time.Duration, error) {
	c.advertises.Add(1)
	return c.Discovery.Advertise(ctx, ns, opts...)
}

func (c countingDiscovery) FindPeers(ctx context.Context, ns string, opts ...discovery.Option) (<-chan peer.AddrInfo, error) {
	c.finds.Add(1)
	return c.Discovery.FindPeers(ctx, ns, opts...)
}

// meshTracer follows one node's meshes. GossipSub leaves a disconnected
// peer's meshes without a Prune event: its closed stream ends them here.
type meshTracer struct {
	mu   sync.Mutex
	mesh map[string]map[peer.ID]bool // by topic
}

func (m *meshTracer) size(topic string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.mesh[topic])
}

func (m *meshTracer) Graft(p peer.ID, topic string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mesh[topic] == nil {
		m.mesh[topic] = map[peer.ID]bool{}
	}
	m.mesh[topic][p] = true
}

func (m *meshTracer) Prune(p peer.ID, topic string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.mesh[topic], p)
}

func (m *meshTracer) OnClosedOutboundStream(p peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, peers := range m.mesh {
		delete(peers, p)
	}
}

func (*meshTracer) AddPeer(peer.ID, protocol.ID)             {}
func (*meshTracer) RemovePeer(peer.ID)                       {}
func (*meshTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (*meshTracer) Join(string)                              {}
func (*meshTracer) Leave(string)                             {}
func (*meshTracer) ValidateMessage(*pubsub.Message)          {}
func (*meshTracer) DeliverMessage(*pubsub.Message)           {}
func (*meshTracer) RejectMessage(*pubsub.Message, string)    {}
func (*meshTracer) DuplicateMessage(*pubsub.Message)         {}
func (*meshTracer) ThrottlePeer(peer.ID)                     {}
func (*meshTracer) RecvRPC(*pubsub.RPC)                      {}
func (*meshTracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (*meshTracer) DropRPC(*pubsub.RPC, peer.ID)             {}
func (*meshTracer) UndeliverableMessage(*pubsub.Message)     {}

// joining is how many nodes join at once.
const joining = 16

// scaleNodeState is one simulated node.
type scaleNodeState struct {
	h      host.Host
	ps     *pubsub.PubSub
	tracer *meshTracer
	topics map[int]*pubsub.Topic // by tracker
}

// discoverAtScale runs the network once: with DHT discovery joined through
// the bootstrap nodes, or (withDHT false) with random peering alone.
func discoverAtScale(b *testing.B, cfg scaleConfig, follows [][]int, withDHT bool) scaleResult {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: cfg.latency})

	total := cfg.nodes
	if withDHT {
		total += cfg.boot
	}
	hosts := make([]boundedHost, total) // nodes first, then bootstrap nodes
	for i := range hosts {
		h, err := mn.GenPeer()
		if err != nil {
			b.Fatal(err)
		}
		low, high := cfg.lowWater, cfg.maxPeers
		if i >= cfg.nodes {
			low, high = cfg.bootMaxPeers*3/4, cfg.bootMaxPeers
		}
		cm, err := bconnmgr.NewConnManager(low, high, bconnmgr.WithGracePeriod(cfg.grace), bconnmgr.WithSilencePeriod(cfg.silence))
		if err != nil {
			b.Fatal(err)
		}
		defer cm.Close()
		h.Network().Notify(cm.Notifee())
		hosts[i] = boundedHost{h, boundedConns{cm}} // as the node's
	}
	// Every node may dial every other: who connects to whom is up to the
	// nodes, not the links.
	if err := mn.LinkAll(); err != nil {
		b.Fatal(err)
	}
	var boot []peer.AddrInfo
	for _, h := range hosts[cfg.nodes:] {
		boot = append(boot, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	}

	followed := make([][]int, cfg.nodes) // trackers, by node
	for t, fs := range follows {
		for _, n := range fs {
			followed[n] = append(followed[n], t)
		}
	}
	topicName := func(t int) string {
		id := topics.TrackerID{'s', 'c', 'a', 'l', 'e'}
		id[14], id[15] = byte(t>>8), byte(t)
		return topics.TrackerTopic(id)
	}

	var finds, advertises atomic.Int64
	var dhts []*dht.IpfsDHT
	defer func() {
		for _, d := range dhts {
			d.Close()
		}
	}()
	var mu sync.Mutex
	received := make([]map[int]bool, cfg.trackers) // nodes that received tracker t's message
	for t := range received {
		received[t] = map[int]bool{}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	// start starts node i: its DHT (when withDHT), its GossipSub, its
	// follows. It may be called concurrently.
	start := func(i int) (*scaleNodeState, error) {
		h := hosts[i]
		tr := &meshTracer{mesh: map[string]map[peer.ID]bool{}}
		opts := append(routerOptions(cfg.heartbeat, func(peer.ID) float64 { return 0 }, mocknetPrefix), pubsub.WithRawTracer(tr))
		if withDHT {
			var bootPeers []peer.AddrInfo
			for _, ai := range boot {
				if ai.ID != h.ID() {
					bootPeers = append(bootPeers, ai)
					h.cm.Protect(ai.ID, "bootstrap") // as the node does
				}
			}
			d, err := dht.New(h,
				dht.ProtocolPrefix(DHTPrefix),
				dht.Mode(dht.ModeServer),
				dht.BootstrapPeers(bootPeers...),
				dht.DisableValues(),
			)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			dhts = append(dhts, d)
			mu.Unlock()
			td := newTopicDiscovery(d)
			td.rd = countingDiscovery{td.rd, &finds, &advertises}
			opts = append(opts, pubsub.WithDiscovery(td))
		}
		ps, err := pubsub.NewGossipSub(ctx, h, opts...)
		if err != nil {
			return nil, err
		}
		n := &scaleNodeState{h: h, ps: ps, tracer: tr, topics: map[int]*pubsub.Topic{}}
		if i >= cfg.nodes {
			return n, nil
		}
		for _, t := range followed[i] {
			topic, err := ps.Join(topicName(t))
			if err != nil {
				return nil, err
			}
			if err := topic.SetScoreParams(topicScoreParams(1, cfg.heartbeat)); err != nil {
				return nil, err
			}
			sub, err := topic.Subscribe()
			if err != nil {
				return nil, err
			}
			n.topics[t] = topic
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if _, err := sub.Next(ctx); err != nil {
						return
					}
					mu.Lock()
					received[t][i] = true
					mu.Unlock()
				}
			}()
		}
		return n, nil
	}
	// parallel runs f for each of is, joining nodes a few at a time (a
	// network grows; it does not appear at once).
	parallel := func(is []int, f func(i int) error) {
		b.Helper()
		var pwg sync.WaitGroup
		errc := make(chan error, len(is))
		sem := make(chan struct{}, joining)
		for _, i := range is {
			sem <- struct{}{}
			pwg.Add(1)
			go func() {
				defer pwg.Done()
				defer func() { <-sem }()
				if err := f(i); err != nil {
					errc <- fmt.Errorf("node %d: %w", i, err)
				}
			}()
		}
		pwg.Wait()
		close(errc)
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}

	t0 := time.Now()
	nodes := make([]*scaleNodeState, total)
	all := make([]int, cfg.nodes)
	for i := range all {
		all[i] = i
	}
	if withDHT {
		// The bootstrap nodes first, connected to each other; then each node
		// connects to them, as Node.bootstrap does, and the DHT and
		// discovery do the rest.
		for i := cfg.nodes; i < total; i++ {
			n, err := start(i)
			if err != nil {
				b.Fatal(err)
			}
			nodes[i] = n
			for j := cfg.nodes; j < i; j++ {
				if err := hosts[i].Connect(ctx, peer.AddrInfo{ID: hosts[j].ID()}); err != nil {
					b.Fatal(err)
				}
			}
		}
		parallel(all, func(i int) error {
			n, err := start(i)
			if err != nil {
				return err
			}
			nodes[i] = n
			for _, ai := range boot {
				if err := hosts[i].Connect(ctx, ai); err != nil {
					return err
				}
			}
			return nil
		})
	} else {
		// Membership dialling past one memberlist: each node dials random
		// nodes until it has MaxPeers connections.
		parallel(all, func(i int) error {
			n, err := start(i)
			nodes[i] = n
			return err
		})
		parallel(all, func(i int) error {
			h := hosts[i]
			rng := mrand.New(mrand.NewPCG(2, uint64(i)))
			for tries := 0; len(h.Network().Peers()) < cfg.maxPeers && tries < 10*cfg.maxPeers; tries++ {
				j := rng.IntN(cfg.nodes)
				if j == i {
					continue
				}
				if err := h.Connect(ctx, peer.AddrInfo{ID: hosts[j].ID()}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	r := scaleResult{setup: time.Since(t0)}

	// count counts the follows without a topic peer and without a mesh
	// peer, and the nodes over MaxPeers connections.
	count := func() (noTopic, noMesh, over int) {
		for i := range cfg.nodes {
			for t, topic := range nodes[i].topics {
				if len(topic.ListPeers()) == 0 {
					noTopic++
				}
				if nodes[i].tracer.size(topicName(t)) <= 0 {
					noMesh++
				}
			}
			if len(hosts[i].Network().Peers()) > cfg.maxPeers {
				over++
			}
		}
		return noTopic, noMesh, over
	}
	// Converge: until every follow has a mesh peer. Random peering cannot
	// meet a follower it is not connected to: there, until every follow
	// that has a topic peer has a mesh peer. Then settle: the DHT walks
	// open connections past MaxPeers, which the connection manager trims
	// only after the grace period, so the meshes are counted again once
	// every node is back within MaxPeers (or at the deadline). With the
	// DHT many are not: its lookups keep opening connections, each kept
	// for the grace period. (kad-dht would also protect its two farthest
	// buckets, up to 40 peers; boundedConns makes that a value.)
	t1 := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(cfg.converge)
	if !withDHT {
		deadline = time.Now().Add(cfg.grace + 50*cfg.heartbeat)
	}
	for {
		noTopic, noMesh, _ := count()
		r.noTopicPeer, r.noMeshPeer = noTopic, noMesh
		if noMesh == 0 || (!withDHT && noMesh == noTopic) {
			r.converged = noMesh == 0
			break
		}
		if time.Now().After(deadline) {
			break
		}
		<-tick.C
	}
	r.converge = time.Since(t1)
	r.finds, r.advertises = finds.Load(), advertises.Load()
	deadline = time.Now().Add(cfg.grace + 2*cfg.silence)
	for {
		noTopic, noMesh, over := count()
		r.noTopicPeer, r.noMeshPeer, r.over = noTopic, noMesh, over
		if over == 0 && (noMesh == 0 || noMesh == noTopic) || time.Now().After(deadline) {
			break
		}
		<-tick.C
	}
	r.settle = time.Since(t1) - r.converge
	for _, fs := range follows {
		r.follows += len(fs)
	}
	conns := make([]int, cfg.nodes)
	for i := range conns {
		conns[i] = len(hosts[i].Network().Peers())
	}
	sum := 0
	for _, c := range conns {
		sum += c
	}
	r.conns = float64(sum) / float64(cfg.nodes)
	r.maxConns = slices.Max(conns)

	// Publish one message per tracker from its first follower.
	for t, fs := range follows {
		msg := fmt.Appendf(nil, "discovery at scale: tracker %d", t)
		if err := nodes[fs[0]].topics[t].Publish(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	delivered := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for t, fs := range follows {
			if len(received[t]) < len(fs) {
				return false
			}
		}
		return true
	}
	deadline = time.Now().Add(cfg.deliver)
	for !delivered() && time.Now().Before(deadline) {
		<-tick.C
	}
	mu.Lock()
	got, expected := 0, 0
	for t, fs := range follows {
		for _, n := range fs[1:] {
			if received[t][n] {
				got++
			}
		}
		expected += len(fs) - 1
	}
	mu.Unlock()
	r.delivery = float64(got) / float64(expected)
	r.findsTotal = finds.Load()

	return r
}
