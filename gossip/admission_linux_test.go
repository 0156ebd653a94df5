//go:build linux

package gossip_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lnetwork "github.com/libp2p/go-libp2p/core/network"
	"golang.org/x/time/rate"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/internal/netlab"
	"github.com/thingtracker/ttn/internal/wait"
)

// The admission lab runs off loopback, where libp2p's per-address limits
// apply (loopback is exempt from them): three network namespaces, each a
// host, that the test creates and joins on a bridge.
//
//	attacker 10.77.1.1-32, 10.77.2.1-32 ── 10.77.0.1 victim 10.78.0.1 ── 10.78.K.2 honest
//
// Each host is a process of this test binary, started in its namespace by
// `ip netns exec` and driven over stdin and stdout, one line a command and
// one line a reply: libp2p dials from goroutines on any thread, so the
// only robust way to put a node's sockets in a namespace is to put its
// process there. A process exits when its stdin closes (the test ended or
// died). The lab is internal/netlab's: it needs root and iproute2, and
// without them says SKIP loudly.

const (
	attackConns     = 500             // half-open connections the attacker holds, renewing each once closed
	attackPerSubnet = 32              // attacker addresses in each of 10.77.1.0/24 and 10.77.2.0/24
	attackRate      = 1000            // connects a second, over all: renewals at once, within what two cores bear
	honestAddrs     = 128             // honest addresses 10.78.K.2, a /24 each: one per dial, so no dial spends another's rate
	dialTimeout     = 3 * time.Second // one honest dial
	retryEvery      = 500 * time.Millisecond
	connectWithin   = 10 * time.Second // an honest peer must connect within, retrying: under libp2p's 15 s accept timeout, twice ours
	measureWithin   = 30 * time.Second // the benchmark's honest peer retries for as long, to measure libp2p's defaults too
	victimPort      = 4001
	labProcessLife  = 10 * time.Minute // a lab process exits by itself after
)

// admissionLab is the three hosts, on one bridge.
type admissionLab struct {
	t                        testing.TB
	victim, attacker, honest *netlab.Host
}

func newAdmissionLab(t testing.TB) *admissionLab {
	t.Helper()
	lab := netlab.New(t)
	sw := lab.Bridge()
	l := &admissionLab{t: t, victim: lab.Host("victim"), attacker: lab.Host("attacker"), honest: lab.Host("honest")}
	l.victim.Attach(sw, "10.77.0.1/16")
	l.victim.Attach(sw, "10.78.0.1/16")
	l.attacker.Attach(sw, l.attackerIPs()[0]+"/16")
	l.honest.Attach(sw, l.honestIPs()[0]+"/16")
	with16 := func(ips []string) []string {
		out := make([]string, len(ips))
		for i, ip := range ips {
			out[i] = ip + "/16"
		}
		return out
	}
	l.attacker.AddAddrs(0, with16(l.attackerIPs()[1:])...)
	l.honest.AddAddrs(0, with16(l.honestIPs()[1:])...)
	return l
}

func (l *admissionLab) host(name string) *netlab.Host {
	return map[string]*netlab.Host{"victim": l.victim, "attacker": l.attacker, "honest": l.honest}[name]
}

func (l *admissionLab) attackerIPs() []string {
	var ips []string
	for i := 1; i <= attackPerSubnet; i++ {
		ips = append(ips, fmt.Sprintf("10.77.1.%d", i), fmt.Sprintf("10.77.2.%d", i))
	}
	return ips
}

func (l *admissionLab) honestIPs() []string {
	var ips []string
	for k := range honestAddrs {
		ips = append(ips, fmt.Sprintf("10.78.%d.2", k))
	}
	return ips
}

// labProcess is one host's process.
type labProcess struct {
	t       testing.TB
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan string // lines starting "adm: ", without it

	mu  sync.Mutex
	out []string // every other line, for a failure's report
}

// start runs this test binary's lab process in host's namespace with env.
func (l *admissionLab) start(host string, env ...string) *labProcess {
	t := l.t
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := l.host(host).Command(exe, "-test.run=^TestAdmissionLabProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), append(env, "TTN_ADM_ROLE="+host)...)
	cmd.Stderr = cmd.Stdout
	p := &labProcess{t: t, name: host, cmd: cmd, replies: make(chan string, 16)}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.replies)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if r, ok := strings.CutPrefix(sc.Text(), "adm: "); ok {
				p.replies <- r
				continue
			}
			p.mu.Lock()
			p.out = append(p.out, sc.Text())
			p.mu.Unlock()
		}
	}()
	t.Cleanup(p.stop)
	return p
}

// ask sends cmd and returns the reply, failing the test after d.
func (p *labProcess) ask(cmd string, d time.Duration) string {
	p.t.Helper()
	if cmd != "" {
		if _, err := fmt.Fprintln(p.stdin, cmd); err != nil {
			p.t.Fatalf("%s: %v", p.name, err)
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case r, ok := <-p.replies:
		if !ok {
			p.t.Fatalf("%s exited:\n%s", p.name, p.output())
		}
		return r
	case <-timer.C:
		p.t.Fatalf("%s did not answer %q within %v:\n%s", p.name, cmd, d, p.output())
	}
	return ""
}

func (p *labProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.out, "\n")
}

// stop closes the process's stdin, and kills it if it has not exited 10 s
// later.
func (p *labProcess) stop() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() {
		p.cmd.Wait()
		close(done)
	}()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		p.cmd.Process.Kill()
		<-done
	}
}

// attackStat is the attacker's count of its connections.
type attackStat struct {
	held, connects, dialErrs int
}

func (p *labProcess) attackStat() attackStat {
	p.t.Helper()
	var s attackStat
	r := p.ask("stat", 10*time.Second)
	if _, err := fmt.Sscanf(r, "held=%d connects=%d dialerrs=%d", &s.held, &s.connects, &s.dialErrs); err != nil {
		p.t.Fatalf("attacker: %q: %v", r, err)
	}
	return s
}

// victimStat is the victim's count of inbound connections.
type victimStat struct {
	handshaking, inbound int
}

func (p *labProcess) victimStat() victimStat {
	p.t.Helper()
	var s victimStat
	r := p.ask("stat", 10*time.Second)
	if _, err := fmt.Sscanf(r, "handshaking=%d inbound=%d", &s.handshaking, &s.inbound); err != nil {
		p.t.Fatalf("victim: %q: %v", r, err)
	}
	return s
}

func (s victimStat) String() string {
	return fmt.Sprintf("%d connections in their handshake, %d inbound", s.handshaking, s.inbound)
}

// dialResult is an honest peer's attempt to connect.
type dialResult struct {
	ok       bool
	took     time.Duration
	attempts int
	err      string
}

// dial has a new honest node at 10.78.k.2 connect to the victim, retrying
// within the given time. libp2p dials from its listening address only when
// the route to the destination prefers it as the source: the route is set
// first.
func (l *admissionLab) dial(p *labProcess, k int, within time.Duration) dialResult {
	p.t.Helper()
	l.honest.Run("ip", "route", "replace", "10.78.0.1/32", "dev", "eth0", "src", fmt.Sprintf("10.78.%d.2", k))
	r := p.ask(fmt.Sprintf("dial 10.78.%d.2 %d", k, within), within+30*time.Second)
	verdict, rest, _ := strings.Cut(r, " ")
	var d dialResult
	var ns int64
	if _, err := fmt.Sscanf(rest, "%d %d", &ns, &d.attempts); err != nil {
		p.t.Fatalf("honest: %q: %v", r, err)
	}
	d.ok, d.took = verdict == "ok", time.Duration(ns)
	if !d.ok {
		fields := strings.SplitN(rest, " ", 3)
		d.err = fields[len(fields)-1]
	}
	return d
}

// startVictim starts the victim's node and returns its process and ID.
func (l *admissionLab) startVictim() (*labProcess, string) {
	l.t.Helper()
	victim := l.start("victim", fmt.Sprintf("TTN_ADM_LISTEN=/ip4/10.77.0.1/tcp/%d,/ip4/10.78.0.1/tcp/%d", victimPort, victimPort))
	return victim, victim.ask("", 60*time.Second)
}

// startHonest starts the honest host, whose nodes dial the victim's id.
func (l *admissionLab) startHonest(id string) *labProcess {
	l.t.Helper()
	return l.start("honest", fmt.Sprintf("TTN_ADM_TARGET=/ip4/10.78.0.1/tcp/%d/p2p/%s", victimPort, id))
}

// startAttack starts the attacker and returns once the attack holds: the
// victim counts at least one connection in its handshake per attacker
// address, and is refusing the surplus (every connection renewed once on
// average).
func (l *admissionLab) startAttack(victim *labProcess) *labProcess {
	l.t.Helper()
	attacker := l.start("attacker",
		fmt.Sprintf("TTN_ADM_TARGET=10.77.0.1:%d", victimPort),
		"TTN_ADM_SOURCES="+strings.Join(l.attackerIPs(), ","))
	var s attackStat
	var v victimStat
	wait.For(l.t, 60*time.Second, func() error {
		s, v = attacker.attackStat(), victim.victimStat()
		if s.connects < 2*attackConns || v.handshaking < 2*attackPerSubnet {
			return fmt.Errorf("the attack has not got going: %d connects, %d failed dials; the victim holds %v", s.connects, s.dialErrs, v)
		}
		return nil
	})
	l.t.Logf("attack holds: the victim holds %v; the attacker has %d connections open, %d connects so far, %d failed dials",
		v, s.held, s.connects, s.dialErrs)
	return attacker
}

// TestAdmissionUnderAttack: while an attacker holds 500 connections that
// never finish their handshake to a node's libp2p port, from 64 addresses
// on two subnets, renewing each as soon as the node closes it, a new peer
// from elsewhere still connects within connectWithin.
func TestAdmissionUnderAttack(t *testing.T) {
	l := newAdmissionLab(t)
	victim, id := l.startVictim()
	honest := l.startHonest(id)
	attacker := l.startAttack(victim)
	d := l.dial(honest, 0, connectWithin)
	v, s := victim.victimStat(), attacker.attackStat()
	t.Logf("under attack (the victim holds %v; the attacker has %d connections open, %d connects so far), the honest peer connected: %v, after %v and %d attempts",
		v, s.held, s.connects, d.ok, d.took.Round(time.Millisecond), d.attempts)
	if !d.ok {
		t.Fatalf("an honest peer could not connect within %v while the victim held %v (%d attempts; last: %s)",
			connectWithin, v, d.attempts, d.err)
	}
}

// BenchmarkAdmissionUnderAttack reports an honest peer's time to connect
// while the attack of TestAdmissionUnderAttack holds, a new node from a
// new address each time, against the same time measured in the same lab
// before the attack began. Run with -benchtime=Nx, N at most 120: each
// dial needs an address of its own.
func BenchmarkAdmissionUnderAttack(b *testing.B) {
	const quiet = 8
	l := newAdmissionLab(b)
	b.Logf("victim: %s", gossip.AdmissionLimits())
	b.Logf("attack: %d half-open connections from %d addresses on two /24s, at most %d connects/s; honest dials: %v each, retried every %v within %v",
		attackConns, 2*attackPerSubnet, attackRate, dialTimeout, retryEvery, measureWithin)
	victim, id := l.startVictim()
	honest := l.startHonest(id)
	var quietTotal time.Duration
	for k := range quiet {
		d := l.dial(honest, k, measureWithin)
		if !d.ok {
			b.Fatalf("an honest peer could not connect without an attack: %s", d.err)
		}
		quietTotal += d.took
	}
	l.startAttack(victim)

	var total time.Duration
	var took []time.Duration
	failed, held := 0, 0
	k := quiet
	for b.Loop() {
		if k == honestAddrs {
			b.Fatalf("out of honest addresses: run with -benchtime=%dx at most", honestAddrs-quiet)
		}
		d := l.dial(honest, k, measureWithin)
		k++
		if !d.ok {
			failed++
		}
		took = append(took, d.took)
		total += d.took
		held = max(held, victim.victimStat().handshaking)
	}
	slices.Sort(took)
	n := len(took)
	quietMean := quietTotal / quiet
	b.ReportMetric(float64(total.Milliseconds())/float64(n), "ms/connect")
	b.ReportMetric(float64(took[n/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[n-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(total)/float64(n)/float64(quietMean), "x-quiet")
	b.ReportMetric(float64(failed)/float64(n), "failed/op")
	b.Logf("quiet: %v a connect; under attack (up to %d connections in their handshake): %v a connect, %d of %d failed within %v",
		quietMean.Round(time.Microsecond), held, (total / time.Duration(n)).Round(time.Microsecond), failed, n, measureWithin)
}

// TestAdmissionLabProcess is a host of the admission lab when run by it
// (TTN_ADM_ROLE set), and skipped otherwise.
func TestAdmissionLabProcess(t *testing.T) {
	role := os.Getenv("TTN_ADM_ROLE")
	if role == "" {
		t.Skip("a host of the admission lab: runs only as a child of TestAdmissionUnderAttack")
	}
	ctx, cancel := context.WithTimeout(context.Background(), labProcessLife)
	defer cancel()
	cmds := make(chan string)
	go func() {
		defer close(cmds)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			select {
			case cmds <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	reply := func(format string, args ...any) { fmt.Printf("adm: "+format+"\n", args...) }
	switch role {
	case "victim":
		runVictim(t, ctx, cmds, reply)
	case "honest":
		runHonest(t, ctx, cmds, reply)
	case "attacker":
		runAttacker(t, ctx, cmds, reply)
	default:
		t.Fatalf("unknown role %q", role)
	}
}

// labNode starts a node listening on listen, memberlist off; stop closes it
// and its log.
func labNode(t *testing.T, listen []string) (n *gossip.Node, stop func()) {
	l, err := feed.Open(filepath.Join(t.TempDir(), "log"), feed.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n, err = gossip.New(context.Background(), gossip.Config{
		Key: newKey(t), Store: store{l}, Listen: listen, GossipAddr: "off",
	})
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	return n, func() {
		n.Close()
		l.Close()
	}
}

// runVictim runs a node on TTN_ADM_LISTEN, replies with its ID, and runs
// until stdin closes. It answers "stat" with "handshaking=N inbound=N",
// as its resource manager counts them.
func runVictim(t *testing.T, ctx context.Context, cmds <-chan string, reply func(string, ...any)) {
	n, stop := labNode(t, strings.Split(os.Getenv("TTN_ADM_LISTEN"), ","))
	defer stop()
	reply("%s", n.ID())
	answerStats(t, ctx, "victim", cmds, reply, func() string {
		handshaking, inbound := gossip.Handshaking(n)
		return fmt.Sprintf("handshaking=%d inbound=%d", handshaking, inbound)
	})
}

// answerStats answers each "stat" with stat() until stdin closes or ctx
// ends.
func answerStats(t *testing.T, ctx context.Context, role string, cmds <-chan string, reply func(string, ...any), stat func() string) {
	for {
		select {
		case cmd, ok := <-cmds:
			if !ok {
				return
			}
			if cmd != "stat" {
				t.Fatalf("%s: unknown command %q", role, cmd)
			}
			reply("%s", stat())
		case <-ctx.Done():
			return
		}
	}
}

// runHonest answers "dial IP NANOSECONDS": a new node on IP connects to
// TTN_ADM_TARGET, each dial bounded by dialTimeout, retried every
// retryEvery within the given time. It replies "ok NANOSECONDS ATTEMPTS" or "fail NANOSECONDS
// ATTEMPTS ERROR"; the time is the connect's, from the first dial.
func runHonest(t *testing.T, ctx context.Context, cmds <-chan string, reply func(string, ...any)) {
	target := os.Getenv("TTN_ADM_TARGET")
	for cmd := range cmds {
		var ip string
		var within time.Duration
		if _, err := fmt.Sscanf(cmd, "dial %s %d", &ip, &within); err != nil {
			t.Fatalf("honest: command %q: %v", cmd, err)
		}
		n, stop := labNode(t, []string{"/ip4/" + ip + "/tcp/0"})
		start := time.Now()
		withinCtx, cancel := context.WithTimeout(ctx, within)
		tick := time.NewTicker(retryEvery)
		attempts := 0
		var err error
		for {
			attempts++
			dctx, dcancel := context.WithTimeout(withinCtx, dialTimeout)
			// A failed dial puts the address on libp2p's dial backoff
			// (5 s and more); each retry here is a real dial.
			err = n.Connect(lnetwork.WithForceDirectDial(dctx, "admission lab"), target)
			dcancel()
			if err == nil {
				break
			}
			select {
			case <-tick.C:
				continue
			case <-withinCtx.Done():
			}
			break
		}
		took := time.Since(start)
		tick.Stop()
		cancel()
		stop()
		if err != nil {
			reply("fail %d %d %s", took.Nanoseconds(), attempts, strings.ReplaceAll(err.Error(), "\n", " "))
			continue
		}
		reply("ok %d %d", took.Nanoseconds(), attempts)
	}
}

// runAttacker holds attackConns connections to TTN_ADM_TARGET from the
// addresses in TTN_ADM_SOURCES, each sending the start of a multistream
// header and nothing more, and renews each as soon as the victim closes
// it. It answers "stat" with "held=N connects=N dialerrs=N".
func runAttacker(t *testing.T, ctx context.Context, cmds <-chan string, reply func(string, ...any)) {
	target := os.Getenv("TTN_ADM_TARGET")
	sources := strings.Split(os.Getenv("TTN_ADM_SOURCES"), ",")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var held, connects, dialErrs atomic.Int64
	limit := rate.NewLimiter(attackRate, attackConns)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i := range attackConns {
		wg.Go(func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(sources[i%len(sources)])}, Timeout: 5 * time.Second}
			for limit.Wait(ctx) == nil {
				c, err := d.DialContext(ctx, "tcp", target)
				if err != nil {
					dialErrs.Add(1)
					continue
				}
				connects.Add(1)
				held.Add(1)
				unblock := context.AfterFunc(ctx, func() { c.Close() })
				if _, err := io.WriteString(c, multistreamPartial); err == nil {
					io.Copy(io.Discard, c) // until the victim closes it
				}
				unblock()
				c.Close()
				held.Add(-1)
			}
		})
	}
	answerStats(t, ctx, "attacker", cmds, reply, func() string {
		return fmt.Sprintf("held=%d connects=%d dialerrs=%d", held.Load(), connects.Load(), dialErrs.Load())
	})
}
