package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/control"
	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/node"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// sybilShape is the flood's size. The full size is the issue's: an indexer
// holding 200 trackers of 20 owners it trusts, flooded with discovery
// records and announcements for 20,000 trackers of 5,000 fresh keys.
type sybilShape struct {
	owners, ownerTrackers int // trusted owners and their trackers each (one more each during the flood)
	entries               int // announcements per trusted tracker before the flood, and as many during it
	keys, floodTrackers   int // fresh keys and their trackers
	floodEntries          int // announcements per flood tracker the indexer follows
	maxTrackers           int // the indexer's --max-trackers
}

func sybilShapeFor() sybilShape {
	if testing.Short() {
		return sybilShape{owners: 4, ownerTrackers: 5, entries: 5, keys: 500, floodTrackers: 2000, floodEntries: 5, maxTrackers: 400}
	}
	return sybilShape{owners: 20, ownerTrackers: 10, entries: 10, keys: 5000, floodTrackers: 20000, floodEntries: 10, maxTrackers: 10000}
}

// indexerDirEnv, when set, makes the benchmark binary the indexer process
// on that data dir (see TestMain).
const indexerDirEnv = "TTN_BENCH_INDEXER_DIR"

// BenchmarkSybilFlood floods a promiscuous indexer, a real node in its own
// process (this binary, re-run; its CPU and memory are its own), with
// discovery records and announcements of fresh keys while the owners it
// trusts go on publishing and announce new trackers. It fails unless the
// indexer keeps every trusted tracker followed throughout and complete at
// the end, follows at most its unknown share of trackers of unknown
// owners, and follows the trusted owners' new trackers during the flood.
// The figures: the rate of flood messages the indexer absorbed (validated
// and decided on: discovery records and announcements), as a ratio of the
// raw verify rate of the network's rule (topics.VerifySignature) measured
// in the same run on the same cores; the indexer's CPU; its RSS before the
// flood and at its peak; its disk.
//
// The flooders are gossip nodes (loopback TCP, Noise, yamux, GossipSub),
// sybilFlooders of them, each with its share of the flood trackers: each
// joins its trackers' topics and sends their discovery records, then
// floodEntries announcements on each tracker the indexer joined, as fast
// as GossipSub takes them. The trusted owners' node is a
// second gossip node on its own Pebble log, serving sync.
func BenchmarkSybilFlood(b *testing.B) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		b.Skip("reads the indexer's CPU and RSS from /proc (Linux)")
	}
	s := sybilShapeFor()
	for range b.N {
		runSybilFlood(b, s)
	}
}

func runSybilFlood(b *testing.B, s sybilShape) {
	ctx := context.Background()
	owners := make([]crypto.PrivKey, s.owners)
	rawOwners := make([][]byte, s.owners)
	for i := range owners {
		owners[i], rawOwners[i] = newBenchKey(b)
	}
	trusted := func(t topics.TrackerID) bool {
		return slices.ContainsFunc(rawOwners, func(raw []byte) bool { return t.OwnedBy(raw) })
	}

	// The indexer's dir: an identity that trusts the owners.
	dir := b.TempDir()
	if _, _, err := datadir.InitIdentity(dir); err != nil {
		b.Fatal(err)
	}
	d, err := datadir.Open(dir, feed.Config{})
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range owners {
		id, _ := topics.NodeID(k.GetPublic())
		if _, err := d.Trust(ctx, id, topics.TrustTrusted, "", "a trusted owner of the benchmark"); err != nil {
			b.Fatal(err)
		}
	}
	d.Close()
	ix := startIndexer(b, dir, s.maxTrackers)
	ctl, err := control.Dial(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	status := func() *view.Status {
		st, err := ctl.Status(ctx)
		if err != nil {
			b.Fatalf("indexer status: %v\n%s", err, ix.output())
		}
		return st
	}
	nodeTracker := topics.DeriveTrackerID(ix.rawKey, "")

	// The trusted owners' node publishes the first half of their chains
	// and their discovery records; the indexer follows the trackers and
	// fetches the history.
	owner := newOwnerNode(b, ix.addrs)
	chains := make(map[topics.TrackerID]*ownerChain)
	var first []topics.TrackerID
	for _, k := range owners {
		for j := range s.ownerTrackers {
			c := owner.chain(b, k, fmt.Sprintf("trusted %d", j))
			chains[c.tracker] = c
			first = append(first, c.tracker)
			owner.publish(b, c, s.entries, false)
			owner.announce(b, c)
		}
	}
	wait.For(b, 2*time.Minute, func() error { return complete(status(), chains) })
	rssBefore := ix.memory().rss

	// The flood.
	floodKeys := make([]crypto.PrivKey, s.keys)
	for i := range floodKeys {
		floodKeys[i], _ = newBenchKey(b)
	}
	// The flooders join their trackers' topics first: the attacker's
	// preparation, before the flood is timed.
	flooders := make([]*flooder, sybilFlooders)
	for i := range flooders {
		flooders[i] = newFlooder(b, ix.addrs, floodKeys, s, i)
	}
	st0, cpu0, start := status(), ix.cpu(), time.Now()
	var (
		progress    atomic.Int64 // flood trackers handled, of 2 passes
		newTrusted  []*ownerChain
		announcedAt time.Duration // when the new trusted trackers were announced
		admittedAt  time.Duration // when the last of them was followed
		minTrusted  = len(first)  // trusted trackers followed, the fewest seen
		maxUnknown  int           // trackers of unknown owners followed, the most seen
		monitorErr  error
		monitor     sync.WaitGroup
		done        = make(chan struct{})
		flooded     = make(chan error, sybilFlooders)
	)
	for _, k := range owners {
		newTrusted = append(newTrusted, owner.chain(b, k, "new during the flood"))
	}
	monitor.Add(1)
	go func() { // the indexer, as the flood goes
		defer monitor.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			st, err := ctl.Status(ctx)
			if err != nil {
				monitorErr = err
				return
			}
			followed := make(map[topics.TrackerID]bool, len(st.Following))
			unknown, trustedHeld := 0, 0
			for _, t := range st.Following {
				followed[t] = true
				switch {
				case slices.Contains(first, t):
					trustedHeld++
				case trusted(t):
				case t != nodeTracker:
					unknown++
				}
			}
			minTrusted, maxUnknown = min(minTrusted, trustedHeld), max(maxUnknown, unknown)
			if admittedAt == 0 && !slices.ContainsFunc(newTrusted, func(c *ownerChain) bool { return !followed[c.tracker] }) {
				admittedAt = time.Since(start)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	for _, f := range flooders {
		go func() { flooded <- f.flood(s, &progress) }()
	}
	// The trusted owners publish on as the flood goes, and announce new
	// trackers halfway through the flood of discovery records.
	steps := float64(2 * s.floodTrackers)
	for e := range s.entries {
		due := float64(e) / float64(s.entries) * steps
		announce := e == s.entries/4
		if announce {
			due = steps / 4
		}
		wait.For(b, 10*time.Minute, func() error {
			if p := progress.Load(); float64(p) < due {
				return fmt.Errorf("the flood handled %d of %v trackers", p, steps)
			}
			return nil
		})
		if announce {
			announcedAt = time.Since(start)
			for _, c := range newTrusted {
				owner.publish(b, c, 1, false)
				owner.announce(b, c)
			}
		}
		for _, t := range first {
			owner.publish(b, chains[t], 1, true)
		}
	}
	for _, c := range newTrusted {
		owner.publish(b, c, s.entries-1, true)
		chains[c.tracker] = c
	}
	for range flooders {
		if err := <-flooded; err != nil {
			b.Fatal(err)
		}
	}
	absorbed := func(st *view.Status) uint64 {
		return st.Net.Accepted + st.Net.Ignored + st.Net.Rejected + st.Net.DiscoveryAccepted + st.Net.DiscoveryIgnored + st.Net.DiscoveryRejected
	}
	// The flood is over when the indexer has decided on the last of it.
	var flood time.Duration
	var st1 *view.Status
	for last, deadline := uint64(0), time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		st1 = status()
		if n := absorbed(st1); n != last {
			last, flood = n, time.Since(start)
			continue
		}
		break
	}
	cpu := ix.cpu() - cpu0
	close(done)
	monitor.Wait()
	if monitorErr != nil {
		b.Fatalf("indexer status: %v\n%s", monitorErr, ix.output())
	}

	// Every trusted tracker complete, the old and the new.
	wait.For(b, 2*time.Minute, func() error { return complete(status(), chains) })
	st := status()
	mem := ix.memory()
	slots := int(float64(s.maxTrackers) * node.DefaultConfig().UnknownShare)
	if minTrusted < s.owners*s.ownerTrackers {
		b.Errorf("during the flood the indexer followed %d of the %d trusted trackers at one point", minTrusted, s.owners*s.ownerTrackers)
	}
	if maxUnknown > slots || maxUnknown == 0 {
		b.Errorf("the indexer followed up to %d trackers of unknown owners: want some, and at most its share %d", maxUnknown, slots)
	}
	if admittedAt == 0 || admittedAt > flood {
		b.Errorf("the trusted owners' new trackers were followed %v after the start, the flood lasting %v", admittedAt, flood)
	}
	if b.Failed() {
		b.Fatalf("indexer status: following %d, known %d, net %+v, log %+v\n%s", len(st.Following), st.Known, st.Net, st.Log, ix.output())
	}
	ix.stop(b)
	disk := st.Log.DiskBytes // the store's size on disk, write-ahead log included

	var sample []signed
	for _, c := range chains {
		sample = append(sample, c.signed...)
	}
	verifyRate := rawVerifyRate(b, sample, ruleVerify)
	msgs := absorbed(st1) - absorbed(st0)
	rate := float64(msgs) / flood.Seconds()
	b.ReportMetric(rate, "msg/s")
	b.ReportMetric(rate/verifyRate, "ratio")
	b.ReportMetric(cpu.Seconds()/flood.Seconds(), "indexer-cores")
	b.ReportMetric(float64(mem.peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(disk)/(1<<20), "disk-MiB")
	b.Logf("config: indexer (node, own process, promiscuous, --max-trackers %d, unknown share %d, unknown budget %+v) trusting %d owners with %d trackers of %d+%d announcements, %d new trackers announced halfway; flood: %d fresh keys, %d trackers, %d announcements on each followed; %d flooders and one owners' node (gossip nodes, loopback TCP) in the benchmark process; GOMAXPROCS=%d NumCPU=%d",
		s.maxTrackers, slots, node.DefaultBudgets().Unknown, s.owners, s.owners*s.ownerTrackers, s.entries, s.entries, len(newTrusted),
		s.keys, s.floodTrackers, s.floodEntries, sybilFlooders, runtime.GOMAXPROCS(0), runtime.NumCPU())
	b.Logf("flood: %d messages absorbed in %v, %.0f/s (net %+v); raw verify %.0f/s: ratio %.3f; indexer CPU %.2f cores; RSS %d MiB before, peak %d MiB; disk %d MiB; followed at most %d of %d unknown slots, all %d trusted trackers throughout; new trusted trackers announced %v after the start, all followed %v later",
		msgs, flood.Round(time.Millisecond), rate, st1.Net, verifyRate, rate/verifyRate, cpu.Seconds()/flood.Seconds(),
		rssBefore>>20, mem.peak>>20, disk>>20, maxUnknown, slots, minTrusted, announcedAt.Round(time.Millisecond), (admittedAt - announcedAt).Round(time.Millisecond))
}

// complete says what the indexer lacks of the trusted chains.
func complete(st *view.Status, chains map[topics.TrackerID]*ownerChain) error {
	held := make(map[topics.TrackerID]uint64, len(st.Heads))
	for _, h := range st.Heads {
		held[h.Tracker] = h.Seq
	}
	for t, c := range chains {
		if want := uint64(len(c.signed)); held[t] != want {
			return fmt.Errorf("trusted tracker %s: %d of %d held", t, held[t], want)
		}
	}
	return nil
}

func newBenchKey(b *testing.B) (crypto.PrivKey, []byte) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := topics.RawPublicKey(k.GetPublic())
	return k, raw
}

// ownerNode is the trusted owners' node: a gossip node on its own log.
type ownerNode struct {
	log *feed.Log
	net *gossip.Node
}

// ownerChain is one trusted tracker's chain as published so far.
type ownerChain struct {
	key     crypto.PrivKey
	author  string
	tracker topics.TrackerID
	signed  []signed
	head    topics.ID
}

func newOwnerNode(b *testing.B, bootstrap []string) *ownerNode {
	l, err := feed.Open(filepath.Join(b.TempDir(), "log"), feed.Config{})
	if err != nil {
		b.Fatal(err)
	}
	key, _ := newBenchKey(b)
	store := node.LogStore{Log: l}
	n, err := gossip.New(context.Background(), gossip.Config{Key: key, Store: store, History: store,
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}, GossipAddr: "off", Bootstrap: bootstrap, NoDHT: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close(); l.Close() })
	waitDiscoveryPeer(b, n)
	return &ownerNode{log: l, net: n}
}

// waitDiscoveryPeer waits until n has the indexer on the discovery topic.
func waitDiscoveryPeer(b *testing.B, n *gossip.Node) {
	wait.For(b, time.Minute, func() error {
		if n.DiscoveryPeers() == 0 {
			return fmt.Errorf("no peer on the discovery topic")
		}
		return nil
	})
}

func (o *ownerNode) chain(b *testing.B, key crypto.PrivKey, name string) *ownerChain {
	raw, _ := topics.RawPublicKey(key.GetPublic())
	author, _ := topics.NodeID(key.GetPublic())
	t := topics.DeriveTrackerID(raw, name)
	if err := o.net.Follow(t); err != nil {
		b.Fatal(err)
	}
	return &ownerChain{key: key, author: author, tracker: t}
}

// publish appends n announcements to c, stores them and, when live, sends
// them once the indexer is on the topic.
func (o *ownerNode) publish(b *testing.B, c *ownerChain, n int, live bool) {
	if live {
		wait.For(b, time.Minute, func() error {
			if o.net.TopicPeers(c.tracker) == 0 {
				return fmt.Errorf("the indexer has not joined %s", c.tracker)
			}
			return nil
		})
	}
	for range n {
		seq := uint64(len(c.signed) + 1)
		a, err := topics.Sign(c.key, &topics.Payload{V: 1, Kind: topics.KindThing, Author: c.author, Tracker: c.tracker,
			Seq: seq, Prev: c.head, Time: topics.FormatTime(time.Now()),
			Thing: &topics.Thing{ID: fmt.Sprintf("thing-%d", seq), Title: "A trusted Thing", Version: "1"}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := o.log.Append(context.Background(), a); err != nil {
			b.Fatal(err)
		}
		c.signed, c.head = append(c.signed, signed{topic: topics.TrackerTopic(c.tracker), raw: a.Raw()}), a.ID
		if live {
			if err := o.net.Publish(context.Background(), a); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// announce sends c's discovery record, signed by its owner.
func (o *ownerNode) announce(b *testing.B, c *ownerChain) {
	rec, err := topics.SignDiscovery(c.key, &topics.Discovery{Tracker: c.tracker, Title: "trusted",
		HeadSeq: uint64(len(c.signed)), HeadID: c.head, Time: topics.FormatTime(time.Now())})
	if err != nil {
		b.Fatal(err)
	}
	if err := o.net.PublishDiscovery(context.Background(), rec); err != nil {
		b.Fatal(err)
	}
}

// sybilFlooders is how many gossip nodes flood: one joins at most
// gossip's 10,000 trackers.
const sybilFlooders = 4

// flooder is one of the attacker's gossip nodes, with its part of the
// flood trackers. It keeps nothing.
type flooder struct {
	net      *gossip.Node
	trackers []floodTracker
}

type floodTracker struct {
	key     crypto.PrivKey
	author  string
	tracker topics.TrackerID
}

type keepNothing struct{}

func (keepNothing) Has(topics.ID) (bool, error) { return false, nil }
func (keepNothing) Append(context.Context, *topics.Announcement) (topics.Outcome, error) {
	return topics.Accept, nil
}

// newFlooder starts flooder part of sybilFlooders, joined to its trackers.
func newFlooder(b *testing.B, bootstrap []string, keys []crypto.PrivKey, s sybilShape, part int) *flooder {
	key, _ := newBenchKey(b)
	n, err := gossip.New(context.Background(), gossip.Config{Key: key, Store: keepNothing{},
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}, GossipAddr: "off", Bootstrap: bootstrap, NoDHT: true,
		MaxTrackers: s.floodTrackers/sybilFlooders + 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	waitDiscoveryPeer(b, n)
	f := &flooder{net: n}
	for i := part; i < s.floodTrackers; i += sybilFlooders {
		k := keys[i%len(keys)]
		raw, _ := topics.RawPublicKey(k.GetPublic())
		author, _ := topics.NodeID(k.GetPublic())
		t := floodTracker{k, author, topics.DeriveTrackerID(raw, fmt.Sprintf("flood %d", i))}
		if err := n.Follow(t.tracker); err != nil {
			b.Fatal(err)
		}
		f.trackers = append(f.trackers, t)
	}
	return f
}

// flood sends the discovery records of the flooder's trackers, then
// announcements on those the indexer joined. progress counts the trackers
// handled, over both passes and all flooders.
func (f *flooder) flood(s sybilShape, progress *atomic.Int64) error {
	ctx := context.Background()
	now := topics.FormatTime(time.Now())
	for _, t := range f.trackers {
		rec, err := topics.SignDiscovery(t.key, &topics.Discovery{Tracker: t.tracker, Title: "free models", Time: now})
		if err != nil {
			return err
		}
		if err := f.net.PublishDiscovery(ctx, rec); err != nil {
			return err
		}
		progress.Add(1)
	}
	for _, t := range f.trackers {
		if f.net.TopicPeers(t.tracker) > 0 {
			var prev topics.ID
			for seq := range uint64(s.floodEntries) {
				a, err := topics.Sign(t.key, &topics.Payload{V: 1, Kind: topics.KindThing, Author: t.author, Tracker: t.tracker,
					Seq: seq + 1, Prev: prev, Time: now, Thing: &topics.Thing{ID: fmt.Sprint(seq), Title: "Free model", Version: "1"}})
				if err != nil {
					return err
				}
				if err := f.net.Publish(ctx, a); err != nil {
					return err
				}
				prev = a.ID
			}
		}
		progress.Add(1)
	}
	return nil
}

// indexerProcess is the indexer: this binary, re-run on its dir.
type indexerProcess struct {
	cmd    *exec.Cmd
	stdin  interface{ Close() error }
	addrs  []string
	rawKey []byte
	mu     sync.Mutex
	out    bytes.Buffer
}

func startIndexer(b *testing.B, dir string, maxTrackers int) *indexerProcess {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	id, err := datadir.LoadIdentity(dir)
	if err != nil {
		b.Fatal(err)
	}
	p := &indexerProcess{cmd: exec.Command(exe, "-test.run=^$"), rawKey: id.RawKey}
	p.cmd.Env = append(os.Environ(), indexerDirEnv+"="+dir, "TTN_BENCH_MAX_TRACKERS="+strconv.Itoa(maxTrackers))
	p.cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.out}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.stop(b) })
	addrs := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "indexer listening on "); ok {
				addrs <- strings.Fields(a)
			}
		}
	}()
	select {
	case p.addrs = <-addrs:
	case <-time.After(time.Minute):
		b.Fatalf("the indexer did not start:\n%s", p.output())
	}
	return p
}

// stop lets the indexer leave and waits for it.
func (p *indexerProcess) stop(b *testing.B) {
	p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil && !strings.Contains(err.Error(), "Wait was already called") {
			b.Errorf("indexer: %v\n%s", err, p.output())
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func (p *indexerProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// cpu returns the indexer's CPU time so far.
func (p *indexerProcess) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command name (which may hold spaces): utime
	// and stime are the 12th and 13th, in clock ticks of 1/100 s.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

type memory struct{ rss, peak int64 }

// memory returns the indexer's resident set, now and at its peak.
func (p *indexerProcess) memory() memory {
	pid := p.cmd.Process.Pid
	return memory{rss: int64(procBytes(pid, "VmRSS")), peak: int64(procBytes(pid, "VmHWM"))}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// runIndexer is the indexer process: a promiscuous node on dir, with the
// defaults but for loopback addresses, until its stdin closes.
func runIndexer(dir string) int {
	maxTrackers, _ := strconv.Atoi(os.Getenv("TTN_BENCH_MAX_TRACKERS"))
	n, err := node.New(context.Background(), node.Config{
		Dir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, GossipAddr: "off",
		Promiscuous: true, MaxTrackers: maxTrackers, PrivateFollows: true,
		Logger: slogWarn(os.Stderr),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("indexer listening on " + strings.Join(n.Addrs(), " "))
	bufio.NewReader(os.Stdin).ReadString(0) // until the benchmark closes stdin
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Leave(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
