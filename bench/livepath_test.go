package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/internal/cputime"
	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/node"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// The live path's shape. Authors: each owns one tracker and signs its own
// chain; the receiver follows every tracker. The authors are unknown to the
// receiver, which gives them a trusted author's budget (the network's
// default: 100/s, bursts of 2,000; node.Budgets.Unknown is 10/s, 200), as a
// node that trusts its sources would: 128 authors may send 12,800
// announcements/s between them sustained, more than twice the target, so
// the budget refuses nothing; a refusal is counted (OverBudget) and fails
// the benchmark.
const (
	livePublishers = 4
	liveAuthors    = 128
	// liveWindow is how many announcements may be published and not yet
	// through, over all publishers: delivered to the plugin and relayed by
	// the receiver to each other publisher. The publishers send as fast as
	// the receiver takes them (and its relays are taken in turn), never so
	// far ahead that a queue on the way (pubsub's outbound queue of 1024
	// RPCs per peer, the receiver's relays included; its validation queue
	// of 4096) could fill and drop. A drop anyway fails the benchmark.
	liveWindow = 512
)

// BenchmarkLivePath measures a node's live intake: several publishing
// nodes (gossip nodes, real libp2p hosts on loopback TCP with Noise and
// yamux, GossipSub as the node runs it) send 1 KB announcements of many
// authors to one receiving node, a real running node (node.Start) with its
// whole validator (decoding, the stored-ID check, the author budget,
// verification, the chain checks), its Pebble log with fsync, and the NATS
// fan-out to one plugin over TCP. Every announcement must be accepted,
// stored and fanned out, with nothing dropped or refused anywhere: the
// benchmark fails otherwise. The figure is the rate at which announcements
// reach the plugin while the publishers keep liveWindow of them in flight,
// each round's rate measured apart (the median is reported), per core, and
// as a ratio of the raw single-signature verify rate of the network's rule
// (topics.VerifySignature, as the validator calls it) measured in the same
// run on the same cores. Target: ≥ 5,000 announcements/s on 2 cores.
//
// Publishers, receiver and plugin share the process and its cores, so the
// figure is a floor of what the receiver alone would take. Goroutines carry
// a pprof label (role=receiver, publisher or plugin; setup and bound
// outside the rounds) so that a CPU profile tells the receiver's share:
//
//	go test ./bench -run '^$' -bench LivePath -benchtime 3x -cpuprofile cpu.out
//	go tool pprof -tagfocus role=receiver -top bench.test cpu.out
//
// Each iteration is one round of 20,000 announcements (2,000 with -short),
// on the same nodes: -benchtime 5x runs five rounds.
func BenchmarkLivePath(b *testing.B) {
	per := 20000
	if testing.Short() {
		per = 2000
	}
	total := per * b.N
	var anns []signed
	pprof.Do(context.Background(), pprof.Labels("role", "setup"), func(context.Context) {
		anns = signedAnnouncements(b, liveAuthors, total, oneKBThings)
	})
	// The bound, measured before the first round and after each: on a
	// shared machine the median of these is the fairer comparison.
	var verifyRates []float64
	measureVerify := func() {
		pprof.Do(context.Background(), pprof.Labels("role", "bound"), func(context.Context) {
			verifyRates = append(verifyRates, rawVerifyRate(b, anns, ruleVerify))
		})
	}
	measureVerify()
	held := make(map[topics.ID]int, total) // by publisher
	parsed := make([]*topics.Announcement, total)
	var trackers []topics.TrackerID
	for i, s := range anns { // outside the timed rounds: unlabelled in a profile
		a, err := topics.Validate(s.topic, s.raw, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		parsed[i] = a
		held[a.ID] = publisherOf(i)
		if i < liveAuthors {
			trackers = append(trackers, a.Payload.Tracker)
		}
	}

	recv := startLiveReceiver(b, trackers)

	// Credits: publishing an announcement takes one for the plugin and one
	// for each other publisher, to which the receiver relays it; each is
	// given back as the copy arrives.
	credits := make(chan struct{}, liveWindow*livePublishers)
	// The plugin: a NATS subscriber over TCP to every announcement.
	var delivered atomic.Int64
	var target atomic.Int64
	roundDone := make(chan struct{}, 1)
	pprof.Do(context.Background(), pprof.Labels("role", "plugin"), func(context.Context) {
		wireSubscribe(b, recv.natsAddr, func() {
			<-credits
			if delivered.Add(1) == target.Load() {
				roundDone <- struct{}{}
			}
		})
	})

	// The publishers, each connected to the receiver only and following
	// every tracker. They hold every announcement: their own validator
	// lets their own publishes through and ignores the receiver's relays
	// of the others' as duplicates, cheaply, as a node that stored them.
	pubs := make([]*gossip.Node, livePublishers)
	pprof.Do(context.Background(), pprof.Labels("role", "publisher"), func(ctx context.Context) {
		for i := range pubs {
			key, _, err := crypto.GenerateEd25519Key(rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			p, err := gossip.New(ctx, gossip.Config{
				Key: key, Store: heldStore{held: held, self: i, relayed: func() { <-credits }},
				Listen: []string{"/ip4/127.0.0.1/tcp/0"}, GossipAddr: "off", Bootstrap: recv.addrs,
				NoDHT: true, // connected to the receiver only: no DHT walk finds the other publishers
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { p.Close() })
			for _, t := range trackers {
				if err := p.Follow(t); err != nil {
					b.Fatal(err)
				}
			}
			pubs[i] = p
		}
	})
	// Ready: every publisher has the receiver in its mesh of every topic,
	// and the receiver knows every publisher on every topic (so it relays
	// each announcement to the others, as GossipSub does in a mesh).
	wait.For(b, time.Minute, func() error {
		for i, p := range pubs {
			for _, t := range trackers {
				if p.MeshPeers(t) < 1 {
					return fmt.Errorf("publisher %d: receiver not in its mesh of %s", i, t)
				}
			}
		}
		for _, t := range trackers {
			if n := recv.topicPeers(t); n < livePublishers {
				return fmt.Errorf("receiver knows %d publishers on %s", n, t)
			}
		}
		return nil
	})

	rates := make([]float64, 0, b.N)
	var cpu time.Duration
	var elapsed time.Duration
	var maxBehind uint64      // the search index's, sampled during the rounds
	var indexRatios []float64 // a round's ingest time over the time until it was indexed
	b.ResetTimer()
	for r := range b.N {
		round := parsed[r*per : (r+1)*per]
		target.Store(int64((r + 1) * per))
		cpu0 := cputime.Process()
		start := time.Now()
		// The search index follows the log while the round runs: how far
		// behind it gets, sampled.
		sampling := make(chan struct{})
		var sampled sync.WaitGroup
		sampled.Add(1)
		go func() {
			defer sampled.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-sampling:
					return
				case <-tick.C:
					maxBehind = max(maxBehind, recv.index().Behind)
				}
			}
		}()
		var wg sync.WaitGroup
		pprof.Do(context.Background(), pprof.Labels("role", "publisher"), func(ctx context.Context) {
			for pi, p := range pubs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// An author's announcements go through one publisher,
					// in their order, as the author's own node sends them.
					for i, a := range round {
						if publisherOf(i) != pi {
							continue
						}
						for range livePublishers {
							credits <- struct{}{}
						}
						if err := p.Publish(ctx, a); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
		})
		wg.Wait()
		timeout := time.Minute + time.Duration(per)*time.Millisecond
		select {
		case <-roundDone:
		case <-time.After(timeout):
			b.Fatalf("round %d: %d of %d announcements reached the plugin in %v\n%s",
				r, delivered.Load()-int64(r*per), per, timeout, recv.describe(pubs))
		}
		d := time.Since(start)
		cpu += cputime.Process() - cpu0
		elapsed += d
		rates = append(rates, float64(per)/d.Seconds())
		b.StopTimer()
		close(sampling)
		sampled.Wait()
		// Once the plugin has everything, the index has read the log too
		// (it keeps up), or how long it takes.
		endBehind := recv.index().Behind
		wait.For(b, 5*time.Minute, func() error {
			if n := recv.index().Behind; n > 0 {
				return fmt.Errorf("the search index is %d entries behind the log", n)
			}
			return nil
		})
		lag := time.Since(start) - d
		indexRatios = append(indexRatios, d.Seconds()/(d+lag).Seconds())
		b.Logf("round %d: the search index %d entries behind when the plugin had the round, caught up %v later", r, endBehind, lag.Round(time.Millisecond))
		measureVerify()
		b.StartTimer()
	}
	b.StopTimer()

	// Nothing dropped, refused or missing anywhere. The receiver's
	// counters settle after the plugin has had everything: the validator
	// counts its outcome once the log has the announcement, and the
	// fan-out may have sent it by then.
	want := uint64(total)
	wait.For(b, 30*time.Second, func() error {
		net, _, _ := recv.stats()
		if got := net.Accepted + net.Ignored + net.Rejected; got < want {
			return fmt.Errorf("receiver validated %d of %d", got, want)
		}
		return nil
	})
	// The last relays arrive. A publisher out of the receiver's mesh of a
	// topic for a while (GossipSub's heartbeat prunes and grafts) gets no
	// relays on it: not a drop (a full queue is: DroppedRPCs), but fewer
	// copies (relays/ann below 3), and the credits it held stay taken.
	for deadline := time.Now().Add(5 * time.Second); len(credits) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	net, log, fan := recv.stats()
	if net.Accepted != want || net.Ignored != 0 || net.Rejected != 0 || net.OverBudget != 0 ||
		net.DroppedValidations != 0 || net.DroppedRPCs != 0 ||
		log.Appended != want || log.GapLimited != 0 || log.OverQuota != 0 || log.DiskRefused != 0 ||
		fan.Fanned < want || fan.FanErrors != 0 || fan.SlowConsumers != 0 || delivered.Load() != int64(total) {
		b.Fatalf("want %d accepted, stored, fanned out and delivered, nothing dropped:\n%s", total, recv.describe(pubs))
	}
	// The receiver relays each announcement to the publishers in its mesh
	// of the topic but the sender; they count the relays as duplicates.
	// Each relay dropped is counted in the receiver's DroppedRPCs.
	var relays uint64
	for i, p := range pubs {
		st := p.Stats()
		if st.DroppedRPCs != 0 || st.DroppedValidations != 0 {
			b.Fatalf("publisher %d dropped: %+v", i, st)
		}
		relays += st.Duplicates
	}

	rate, verifyRate := median(slices.Clone(rates)), median(verifyRates)
	procs := runtime.GOMAXPROCS(0)
	b.ReportMetric(rate, "ann/s")
	b.ReportMetric(rate/float64(procs), "ann/s/core")
	b.ReportMetric(verifyRate, "verify/s")
	b.ReportMetric(rate/verifyRate, "ratio")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cores-used")
	b.ReportMetric(float64(log.Appended)/float64(max(log.Commits, 1)), "ann/commit")
	b.ReportMetric(float64(relays)/float64(total), "relays/ann")
	b.ReportMetric(median(slices.Clone(indexRatios)), "index/ingest")
	b.ReportMetric(float64(maxBehind), "index-max-behind")
	if testing.Short() {
		return // a smoke run: too short for a figure
	}
	b.Logf("config: publishers=%d (loopback TCP, Noise, yamux, GossipSub, flood publish, each in the receiver's mesh) authors=%d trackers=%d announcements=%d in %d rounds avg-envelope=%dB window=%d; receiver: node.Start defaults (heartbeat 1s, author budget 100/s burst 2000, validation queue 4096, outbound queue 1024), log fsync=on (group commit), NATS fan-out on to 1 plugin over TCP, search index following the log; GOMAXPROCS=%d NumCPU=%d, publishers and plugin in the same process",
		livePublishers, liveAuthors, len(trackers), total, b.N, avgSize(anns), liveWindow, procs, runtime.NumCPU())
	b.Logf("live path %.0f ann/s (median of %d rounds; min %.0f, max %.0f), %.0f ann/s per core; raw verify (topics.VerifySignature, on every core, median of %d) %.0f/s: ratio %.2f; process %.2f cores used; %d of %d relays to the other publishers arrived (target ≥ 5,000 ann/s on 2 cores)",
		rate, b.N, slices.Min(rates), slices.Max(rates), rate/float64(procs), len(verifyRates), verifyRate, rate/verifyRate, cpu.Seconds()/elapsed.Seconds(), relays, total*(livePublishers-1))
}

// publisherOf tells which publisher sends the announcement of index i: an
// author's all go through one.
func publisherOf(i int) int { return i % liveAuthors % livePublishers }

// heldStore is a publisher's store: it holds every announcement of the run
// already (each by the publisher that sends it), and stores nothing more.
// Its validator asks it about its own publishes and the receiver's relays
// of the others', for which it calls relayed.
type heldStore struct {
	held    map[topics.ID]int
	self    int
	relayed func()
}

func (s heldStore) Has(id topics.ID) (bool, error) {
	p, ok := s.held[id]
	if ok && p != s.self {
		s.relayed()
	}
	return ok, nil
}

func (heldStore) Append(context.Context, *topics.Announcement) (topics.Outcome, error) {
	return topics.Ignore, nil
}

// liveReceiver is the receiving node, as the benchmark sees it.
type liveReceiver struct {
	addrs      []string // libp2p multiaddrs with /p2p/ID
	natsAddr   string
	topicPeers func(topics.TrackerID) int
	stats      func() (gossip.Stats, feed.Stats, natsapi.Stats)
	index      func() view.IndexStats // the receiver's search index
}

// startLiveReceiver starts the receiving node as a real node runs (its
// defaults but for loopback addresses, a temporary dir and the embedded
// NATS server), following trackers, under the pprof label role=receiver.
// It is the benchmark's only use of package node.
func startLiveReceiver(b *testing.B, follow []topics.TrackerID) liveReceiver {
	var n *node.Node
	pprof.Do(context.Background(), pprof.Labels("role", "receiver"), func(context.Context) {
		n = nodetest.Start(b, node.Config{
			Dir: b.TempDir(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}, GossipAddr: "127.0.0.1:0",
			Follow:  datadir.FollowSet{Trackers: follow},
			NATS:    &natsapi.Config{Addr: "127.0.0.1:0"},
			Budgets: node.Budgets{Unknown: node.Budget{Rate: 100, Burst: 2000}}, // see livePublishers
			// Its follows stay out of a node record: every entry the
			// benchmark counts is a publisher's.
			PrivateFollows: true,
		})
	})
	return liveReceiver{
		addrs: n.Addrs(), natsAddr: n.NATSAddr(), topicPeers: n.TopicPeers, index: n.IndexStats,
		stats: func() (gossip.Stats, feed.Stats, natsapi.Stats) {
			s, err := n.Status(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			return gossip.Stats(s.Net), feed.Stats(s.Log), natsapi.Stats(*s.NATS)
		},
	}
}

// describe tells the counters of the receiver and the publishers.
func (r liveReceiver) describe(pubs []*gossip.Node) string {
	net, log, fan := r.stats()
	s := fmt.Sprintf("receiver net %+v\nreceiver log %+v\nreceiver nats %+v", net, log, fan)
	for i, p := range pubs {
		s += fmt.Sprintf("\npublisher %d: %+v", i, p.Stats())
	}
	return s
}
