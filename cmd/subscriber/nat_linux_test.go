//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/thingtracker/ttn/internal/netlab"
	"github.com/thingtracker/ttn/internal/racebuild"
	"github.com/thingtracker/ttn/topics"
)

// The NAT tests (issue #13) run the real binaries as most makers would: at
// home, behind a home router, reaching the rest of the network through
// one public host. The internet is a bridge on 11.0.0.0/24 (addresses
// libp2p takes for public ones, which AutoNAT, hole punching and address
// filtering need; harmless inside namespaces); each home is a LAN on
// 192.168.N.0/24 behind a router that translates addresses:
//
//	public host 11.0.0.10: bootstrap peer, relay, DHT server
//	router-a 11.0.0.21, port-preserving NAT — home-a 192.168.1.2: creates a tracker, publishes
//	router-b 11.0.0.22, port-preserving NAT — home-b 192.168.2.2: follows it
//	router-c 11.0.0.23, symmetric NAT       — home-c 192.168.3.2: follows it
//
// home-a and home-b can punch a hole to each other; home-c's router gives
// each connection a new port, so it can only be reached through the relay.

const (
	natPublic   = "11.0.0.10"
	natFollows  = 50               // announcements home-a publishes
	natMeet     = 90 * time.Second // for the homes to find each other
	natDeliver  = 90 * time.Second // for the announcements to arrive
	natPunch    = 60 * time.Second // for home-a and home-b to connect directly
	natPerStart = 30 * time.Second // for a node's ready line
)

// natHome describes a home: its name, router and NAT.
type natHome struct {
	name, router string
	nat          netlab.NAT
}

var natHomes = [3]natHome{
	{"home-a", "router-a", netlab.PortPreserving},
	{"home-b", "router-b", netlab.PortPreserving},
	{"home-c", "router-c", netlab.Symmetric},
}

// natNet is the lab: the public host, the homes and their routers.
type natNet struct {
	pub     *netlab.Host
	homes   [3]*netlab.Host
	routers [3]*netlab.Router
	// from[i][j] reads the packets router i forwarded from router j into
	// its LAN: a direct path from home j to home i.
	from [3][3]func() uint64
}

func newNATNet(t testing.TB) *natNet {
	t.Helper()
	l := netlab.New(t)
	internet := l.Bridge()
	n := &natNet{pub: l.Host("pub")}
	n.pub.Attach(internet, natPublic+"/24")
	for i, h := range natHomes {
		lan := l.Bridge()
		n.routers[i] = l.Router(h.router, internet, fmt.Sprintf("11.0.0.%d/24", 21+i), lan, fmt.Sprintf("192.168.%d.1/24", i+1), h.nat)
		n.homes[i] = l.Host(h.name)
		n.homes[i].Attach(lan, fmt.Sprintf("192.168.%d.2/24", i+1))
		n.homes[i].Route(fmt.Sprintf("192.168.%d.1", i+1))
	}
	for i := range n.routers {
		for j := range n.routers {
			if i != j {
				n.from[i][j] = n.routers[i].CountFrom(n.routers[j].Addr())
			}
		}
	}
	return n
}

// natFeatures reports whether the binaries have the NAT flags
// (--reachability and the rest): until they do, the test runs as far as
// it can and fails where it needs them.
var natFeatures = sync.OnceValue(func() bool {
	out, _ := exec.Command(announcerBin, "run", "-h").CombinedOutput()
	return strings.Contains(string(out), "-reachability")
})

// natRun is one run of the NAT case.
type natRun struct {
	t       testing.TB
	net     *natNet
	root    string
	tracker string
	pubID   string
	pub     *proc
	homes   [3]*proc // home-a runs announcer run; home-b and home-c, subscriber
	dirs    [3]string
	start   time.Time
}

// natNodeArgs are the flags every node of the NAT case gets: no plugins,
// shrunk timings, no memberlist (a private node must not be a member, and
// the public one has nobody to meet there).
var natNodeArgs = []string{"--gossip-addr", "off", "--nats", "off", "--http", "off", "--heartbeat", "200ms",
	"--discovery-interval", "2s", "--anti-entropy-interval", "2s", "--log-level", "info"}

// natEnv turns on the libp2p logs that tell a hole punch's story; the
// environment's GOLOG_LOG_LEVEL wins.
func natEnv() []string {
	env := os.Environ()
	if os.Getenv("GOLOG_LOG_LEVEL") == "" {
		env = append(env, "GOLOG_LOG_LEVEL=error,p2p-holepunch=debug,autorelay=info,relay=info", "GOLOG_LOG_FMT=nocolor")
	}
	return env
}

// listenArgs are the flags of a node listening on addr, TCP and (with the
// NAT features) QUIC, port 7601.
func listenArgs(addr string) []string {
	args := []string{"--listen", "/ip4/" + addr + "/tcp/7601"}
	if natFeatures() {
		args = append(args, "--listen", "/ip4/"+addr+"/udp/7601/quic-v1")
	}
	return args
}

// startNAT builds the lab, starts the public host and the three homes,
// and waits for their ready lines.
func startNAT(t testing.TB) *natRun {
	t.Helper()
	r := &natRun{t: t, net: newNATNet(t), root: t.TempDir()}
	for i, h := range natHomes {
		r.dirs[i] = filepath.Join(r.root, h.name)
	}
	cli(t, "", "init", "--data", r.dirs[0])
	r.tracker = strings.TrimSpace(cli(t, "", "tracker", "create", "--data", r.dirs[0], "--name", "behind-nat"))
	if !natFeatures() {
		t.Logf("the announcer has no --reachability yet: the nodes run without the NAT flags, TCP only; the test will fail where it needs them")
	}

	r.start = time.Now()
	// The public host is an indexer, as a community's bootstrap nodes are:
	// it follows every tracker it learns of, so a home behind a symmetric
	// NAT, which no hole reaches, has a direct peer on its topics (pubsub
	// uses direct connections only) and a peer to sync from.
	args := slices.Concat([]string{"--data", filepath.Join(r.root, "pub"), "--promiscuous", "--format", "json"}, listenArgs(natPublic), natNodeArgs)
	if natFeatures() {
		args = append(args, "--reachability", "public")
	}
	r.pub = r.startOn(r.net.pub, "pub", subscriberBin, args...)
	ready, err := readyLine(r.pub)
	if err != nil {
		t.Fatal(err)
	}
	r.pubID = strings.Fields(ready)[2] // ready: node ID peers N following M …
	boot := []string{"--bootstrap", "/ip4/" + natPublic + "/tcp/7601/p2p/" + r.pubID}
	if natFeatures() {
		boot = append(boot, "--bootstrap", "/ip4/"+natPublic+"/udp/7601/quic-v1/p2p/"+r.pubID, "--reachability", "private")
	}
	for i, h := range natHomes {
		home := slices.Concat([]string{"--data", r.dirs[i]}, listenArgs(r.net.homes[i].Addr()), boot, natNodeArgs)
		if i == 0 {
			r.homes[i] = r.startOn(r.net.homes[i], h.name, announcerBin, append([]string{"run"}, home...)...)
		} else {
			r.homes[i] = r.startOn(r.net.homes[i], h.name, subscriberBin, append(home, "--follow", r.tracker, "--format", "json")...)
		}
	}
	for _, p := range r.homes {
		if _, err := readyLine(p); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(r.dumpIfFailed) // before the processes stop: it asks them
	return r
}

func (r *natRun) startOn(h *netlab.Host, name, bin string, args ...string) *proc {
	cmd := h.Command(bin, args...)
	cmd.Env = natEnv()
	return startCmd(r.t, name, cmd)
}

// readyLine waits for p's ready line and returns it.
func readyLine(p *proc) (string, error) {
	select {
	case line := <-p.ready:
		p.t.Logf("%s: %s", p.name, line)
		return line, nil
	case <-p.done:
		return "", fmt.Errorf("%s exited before it was ready", p.name)
	case <-time.After(natPerStart):
		return "", fmt.Errorf("%s printed no ready line within %v", p.name, natPerStart)
	}
}

// within calls cond every 20 ms until it returns nil, and returns its
// last error if it still fails after d.
func within(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// natStatus is what the test reads of `announcer status --format json`.
// The NAT counters are pointers: nil when the node does not report them.
type natStatus struct {
	Node  string `json:"node"`
	Peers int    `json:"peers"`
	Net   struct {
		Reachability      *string `json:"reachability"`
		RelayReservations *int    `json:"relay_reservations"`
		DirectConns       *int    `json:"direct_conns"`
		RelayedConns      *int    `json:"relayed_conns"`
		HolePunchesTried  *uint64 `json:"hole_punches_tried"`
		HolePunchesWon    *uint64 `json:"hole_punches_won"`
		DHTPeers          *int    `json:"dht_peers"`
	} `json:"net"`
}

func (r *natRun) status(dir string) natStatus {
	r.t.Helper()
	var s natStatus
	if err := json.Unmarshal([]byte(cli(r.t, "", "status", "--data", dir, "--format", "json")), &s); err != nil {
		r.t.Fatalf("status of %s: %v", dir, err)
	}
	return s
}

func (s natStatus) String() string {
	str := func(p *string) string {
		if p == nil {
			return "-"
		}
		return *p
	}
	num := func(p any) string {
		switch v := p.(type) {
		case *int:
			if v != nil {
				return strconv.Itoa(*v)
			}
		case *uint64:
			if v != nil {
				return strconv.FormatUint(*v, 10)
			}
		}
		return "-"
	}
	return fmt.Sprintf("peers %d reachability %s reservations %s direct %s relayed %s punches %s/%s won dht %s",
		s.Peers, str(s.Net.Reachability), num(s.Net.RelayReservations), num(s.Net.DirectConns), num(s.Net.RelayedConns),
		num(s.Net.HolePunchesWon), num(s.Net.HolePunchesTried), num(s.Net.DHTPeers))
}

// meet waits until home-a is connected to the public host and both other
// homes (directly or through the relay): they found each other through
// the DHT and reach each other through relay reservations. Only then does
// home-a publish: a follower that joins later catches up by sync, which
// runs on direct connections only, and home-c has none.
func (r *natRun) meet() error {
	var s natStatus
	err := within(natMeet, func() error {
		if s = r.status(r.dirs[0]); s.Peers < 3 {
			return fmt.Errorf("home-a is connected to %d peers, want 3 (the public host, home-b, home-c): the homes did not find or reach each other (DHT provider records, relay reservations)", s.Peers)
		}
		return nil
	})
	if err != nil {
		r.logStatus()
	}
	return err
}

// publish has home-a publish the announcements and returns their IDs.
func (r *natRun) publish() map[string]bool {
	r.t.Helper()
	ids := map[string]bool{}
	for _, id := range strings.Fields(cli(r.t, ndjson("nat", natFollows), "publish", "--data", r.dirs[0], "--tracker", r.tracker, "-")) {
		ids[id] = true
	}
	if len(ids) != natFollows {
		r.t.Fatalf("publish printed %d IDs, want %d", len(ids), natFollows)
	}
	return ids
}

// printed counts the Things of the tracker a follower printed, and
// reports the first that was printed twice or is not one of want.
func (r *natRun) printed(i int, want map[string]bool) (int, error) {
	n, seen := 0, map[topics.ID]bool{}
	for _, e := range r.homes[i].entries() {
		if e.Kind != topics.KindThing {
			continue
		}
		switch {
		case seen[e.ID]:
			return n, fmt.Errorf("%s printed %s twice", natHomes[i].name, e.ID)
		case !want[e.ID.String()]:
			return n, fmt.Errorf("%s printed %s, which home-a did not publish", natHomes[i].name, e.ID)
		}
		seen[e.ID] = true
		n++
	}
	return n, nil
}

// deliver waits until home-a's log holds the announcements and both
// followers printed each of them, once. When first is not nil, it is set
// to when home-b first printed one.
func (r *natRun) deliver(want map[string]bool, first *time.Time) error {
	err := within(natDeliver, func() error {
		var short []string
		for i := 1; i < 3; i++ {
			n, err := r.printed(i, want)
			if err != nil {
				return err
			}
			if i == 1 && n > 0 && first != nil && first.IsZero() {
				*first = time.Now()
			}
			if n < natFollows {
				short = append(short, fmt.Sprintf("%s printed %d of %d", natHomes[i].name, n, natFollows))
			}
		}
		if n := len(logIDs(r.t, r.dirs[0], r.tracker)); n < natFollows+1 { // and the tracker's own entry
			short = append(short, fmt.Sprintf("home-a's log holds %d of %d", n, natFollows+1))
		}
		if len(short) > 0 {
			return errors.New(strings.Join(short, "; "))
		}
		return nil
	})
	if err != nil {
		r.logStatus()
	}
	return err
}

// punched waits until home-a and home-b are connected directly: packets
// from each one's router reached the other's LAN (which its router lets
// in only for a connection from the LAN: a punched hole), and both nodes
// count a direct connection besides the public host's, and a hole punch
// won.
func (r *natRun) punched() error {
	err := within(natPunch, func() error {
		ab, ba := r.net.from[1][0](), r.net.from[0][1]()
		if ab == 0 || ba == 0 {
			return fmt.Errorf("no direct path between home-a and home-b: router-b let in %d packets from router-a, router-a %d from router-b", ab, ba)
		}
		a, b := r.status(r.dirs[0]), r.status(r.dirs[1])
		if a.Net.DirectConns == nil || a.Net.HolePunchesWon == nil {
			return errors.New("packets flow directly between home-a and home-b, but the status has no net.direct_conns or net.hole_punches_won")
		}
		if *a.Net.DirectConns < 2 || *b.Net.DirectConns < 2 {
			return fmt.Errorf("home-a has %d direct connections and home-b %d, want 2 each (the public host and the other home)", *a.Net.DirectConns, *b.Net.DirectConns)
		}
		if *a.Net.HolePunchesWon+*b.Net.HolePunchesWon == 0 {
			return errors.New("home-a and home-b are connected directly, but neither won a hole punch")
		}
		return nil
	})
	if err != nil {
		r.logStatus()
	}
	return err
}

// viaRelay checks that home-c has no direct path to the other homes: its
// router let in no packet from theirs, so what it printed came through
// the public host.
func (r *natRun) viaRelay() error {
	if n := r.net.from[2][0]() + r.net.from[2][1](); n > 0 {
		return fmt.Errorf("router-c let in %d packets from router-a or router-b: home-c reached a home directly through its symmetric NAT", n)
	}
	s := r.status(r.dirs[2])
	if s.Net.DirectConns != nil && *s.Net.DirectConns != 1 {
		return fmt.Errorf("home-c has %d direct connections, want 1 (the public host)", *s.Net.DirectConns)
	}
	return nil
}

// logStatus logs each node's status line.
func (r *natRun) logStatus() {
	r.t.Helper()
	r.t.Logf("pub: %v", r.status(filepath.Join(r.root, "pub")))
	for i, h := range natHomes {
		r.t.Logf("%s: %v", h.name, r.status(r.dirs[i]))
	}
}

// dumpIfFailed logs, after a failure, the routers' NAT and filter
// counters and the homes' sockets: where the packets went.
func (r *natRun) dumpIfFailed() {
	if !r.t.Failed() {
		return
	}
	for i, rt := range r.net.routers {
		r.t.Logf("%s (%v NAT):\n%s%s", natHomes[i].router, rt.NAT(),
			rt.Run("iptables", "-w", "5", "-t", "nat", "-L", "POSTROUTING", "-v", "-n", "-x"),
			rt.Run("iptables", "-w", "5", "-L", "-v", "-n", "-x"))
	}
	for i, h := range r.net.homes {
		r.t.Logf("%s sockets:\n%s", natHomes[i].name, h.Run("ss", "-tuan"))
	}
}

// TestNAT (issue #13, "Namespaces with real NAT"): home-a publishes 50
// announcements on its tracker; home-b and home-c, which follow it, each
// print all 50, once; home-a and home-b, behind port-preserving NATs, end
// up connected directly (a punched hole); home-c, behind a symmetric NAT,
// gets everything through the public host.
func TestNAT(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: a public host and three homes behind NAT, in namespaces")
	}
	r := startNAT(t)
	if err := r.meet(); err != nil {
		t.Fatal(err)
	}
	t.Logf("home-a met home-b and home-c after %v", time.Since(r.start).Round(100*time.Millisecond))
	want := r.publish()
	if err := r.deliver(want, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("home-b and home-c printed the %d announcements, each once, %v after the start", natFollows, time.Since(r.start).Round(100*time.Millisecond))
	if err := r.punched(); err != nil {
		t.Fatal(err)
	}
	t.Logf("home-a and home-b connected directly %v after the start", time.Since(r.start).Round(100*time.Millisecond))
	if err := r.viaRelay(); err != nil {
		t.Fatal(err)
	}
	t.Logf("home-c, behind its symmetric NAT, has no direct path: all came through the public host")
	r.logStatus()
}

// BenchmarkHolePunch runs the NAT case again and again, a new lab each
// time, and reports how often home-a and home-b ended up connected
// directly and how long home-b took to print its first announcement. Runs:
// TTN_NAT_RUNS, or b.N when -benchtime says Nx, or 10 (1 with -short).
func BenchmarkHolePunch(b *testing.B) {
	if !natFeatures() {
		b.Skip("SKIP: the announcer has no --reachability yet (no NAT traversal to measure)")
	}
	runs := b.N
	if v := os.Getenv("TTN_NAT_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("TTN_NAT_RUNS=%q: want a number of runs", v)
		}
		runs = n
	} else if runs == 1 && !testing.Short() {
		runs = 10
	}
	b.Logf("config: %d runs; public host %s (TCP and QUIC, relay, DHT server); home-a, home-b behind port-preserving NAT (MASQUERADE), home-c behind symmetric NAT (MASQUERADE --random); %d announcements; binaries race-built: %v",
		runs, natPublic, natFollows, racebuild.Enabled)
	var won int
	var firsts, punches []time.Duration
	for i := range runs {
		res, err := holePunchRun(b)
		firsts = append(firsts, res.first)
		if err != nil {
			b.Logf("run %d: no direct connection: %v", i+1, err)
			continue
		}
		won++
		punches = append(punches, res.punch)
		b.Logf("run %d: first announcement at home-b after %v, direct after %v", i+1, res.first.Round(10*time.Millisecond), res.punch.Round(10*time.Millisecond))
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(100*float64(won)/float64(runs), "punched-%")
	b.ReportMetric(median(firsts).Seconds(), "s-to-first-at-b")
	if len(punches) > 0 {
		b.ReportMetric(median(punches).Seconds(), "s-to-direct")
	}
}

// natResult is one run's figures, from the start of the first process.
type natResult struct {
	first time.Duration // home-b printed its first announcement
	punch time.Duration // home-a and home-b were seen connected directly
}

// holePunchRun runs the NAT case once in a lab of its own, removed when it
// returns. Failing to set it up fails the benchmark; failing to deliver or
// to punch a hole is returned, with the processes' logs.
func holePunchRun(b *testing.B) (natResult, error) {
	rt := &runTB{TB: b}
	defer rt.end()
	var res natResult
	r := startNAT(rt)
	err := r.meet()
	if err == nil {
		var first time.Time
		err = r.deliver(r.publish(), &first)
		if !first.IsZero() {
			res.first = first.Sub(r.start)
		}
	}
	if err == nil {
		err = r.punched()
		res.punch = time.Since(r.start)
	}
	if err != nil {
		rt.flush()
	}
	return res, err
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// runTB is one run of a benchmark as a testing.TB of its own: its
// cleanups run when the run ends, and what it logs is kept, printed only
// if the run fails (a benchmark prints all it logs).
type runTB struct {
	testing.TB
	mu       sync.Mutex
	log      []string
	cleanups []func()
	failed   bool
}

func (r *runTB) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, fmt.Sprintf(format, args...))
}

func (r *runTB) Log(args ...any) { r.Logf("%s", fmt.Sprintln(args...)) }

func (r *runTB) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

// Failed reports whether the run failed, so that its cleanups dump what
// they would after a failed test.
func (r *runTB) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed || r.TB.Failed()
}

func (r *runTB) Fatal(args ...any)                 { r.flush(); r.TB.Fatal(args...) }
func (r *runTB) Fatalf(format string, args ...any) { r.flush(); r.TB.Fatalf(format, args...) }

// flush marks the run failed and prints what it logged.
func (r *runTB) flush() {
	r.mu.Lock()
	r.failed = true
	log := r.log
	r.log = nil
	r.mu.Unlock()
	for _, l := range log {
		r.TB.Log(l)
	}
}

// end runs the cleanups, last registered first, and prints what they
// logged if the run failed.
func (r *runTB) end() {
	r.mu.Lock()
	cs := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	if r.Failed() {
		r.flush()
	}
}
