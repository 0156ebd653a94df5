//go:build linux

package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thingtracker/ttn/topics"
)

// The multi-host test runs the real binaries on separate hosts: network
// namespaces joined by a bridge in a namespace of their own, with
// addresses the test assigns. It needs root and iproute2; without them it
// says SKIP loudly. Namespaces are named ttnt-PID-RAND-*: a crashed run's
// are removed by the next one.

const nsPrefix = "ttnt-"

var nsName = regexp.MustCompile(`^ttnt-(\d+)-[0-9a-f]+-\w+$`)

// lab is a set of hosts on one bridge.
type lab struct {
	t   *testing.T
	tag string // PID-RAND
	rnd string // RAND, for interface names
	n   int
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeStale deletes namespaces left by test runs whose process is gone.
func removeStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		name := fields[0]
		m := nsName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid != os.Getpid() && syscall.Kill(pid, 0) != nil {
			exec.Command("ip", "netns", "del", name).Run()
		}
	}
}

// newLab creates the bridge and n hosts, 10.213.0.1 … 10.213.0.n.
func newLab(t *testing.T, n int) *lab { return newSplitLab(t, n, n) }

// newSplitLab creates hosts 1…n, those up to split on one bridge and the
// others on a second, the two bridges joined by a link that cut can take
// down: a network that can be partitioned.
func newSplitLab(t *testing.T, n, split int) *lab {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("SKIP: the multi-host test needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("SKIP: the multi-host test needs iproute2 (ip): " + err.Error())
	}
	removeStale()
	b := make([]byte, 3)
	rand.Read(b)
	l := &lab{t: t, rnd: hex.EncodeToString(b), n: n}
	l.tag = fmt.Sprintf("%d-%s", os.Getpid(), l.rnd)
	t.Cleanup(l.destroy)
	if err := run("ip", "netns", "add", l.ns("br")); err != nil {
		t.Skip("SKIP: cannot create network namespaces here: " + err.Error())
	}
	steps := [][]string{
		{"ip", "-n", l.ns("br"), "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", l.ns("br"), "link", "set", "br0", "up"},
	}
	if split < n {
		steps = append(steps,
			[]string{"ip", "-n", l.ns("br"), "link", "add", "br1", "type", "bridge"},
			[]string{"ip", "-n", l.ns("br"), "link", "set", "br1", "up"},
			[]string{"ip", "-n", l.ns("br"), "link", "add", "bx", "type", "veth", "peer", "name", "by"},
			[]string{"ip", "-n", l.ns("br"), "link", "set", "bx", "master", "br0"},
			[]string{"ip", "-n", l.ns("br"), "link", "set", "by", "master", "br1"},
			[]string{"ip", "-n", l.ns("br"), "link", "set", "bx", "up"},
			[]string{"ip", "-n", l.ns("br"), "link", "set", "by", "up"},
		)
	}
	for i := 1; i <= n; i++ {
		h, v, p := l.host(i), l.veth(i), l.veth(i)+"p"
		bridge := "br0"
		if i > split {
			bridge = "br1"
		}
		steps = append(steps,
			[]string{"ip", "netns", "add", h},
			[]string{"ip", "-n", h, "link", "set", "lo", "up"},
			[]string{"ip", "link", "add", v, "type", "veth", "peer", "name", p},
			[]string{"ip", "link", "set", v, "netns", h},
			[]string{"ip", "link", "set", p, "netns", l.ns("br")},
			[]string{"ip", "-n", h, "addr", "add", l.addr(i) + "/24", "dev", v},
			[]string{"ip", "-n", h, "link", "set", v, "up"},
			[]string{"ip", "-n", l.ns("br"), "link", "set", p, "master", bridge},
			[]string{"ip", "-n", l.ns("br"), "link", "set", p, "up"},
		)
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func (l *lab) ns(name string) string { return nsPrefix + l.tag + "-" + name }
func (l *lab) host(i int) string     { return l.ns(fmt.Sprintf("h%d", i)) }
func (l *lab) veth(i int) string     { return fmt.Sprintf("t%s%d", l.rnd, i) }
func (l *lab) addr(i int) string     { return fmt.Sprintf("10.213.0.%d", i) }

// link sets host i's link up or down.
func (l *lab) link(i int, up bool) {
	l.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	if err := run("ip", "-n", l.host(i), "link", "set", l.veth(i), state); err != nil {
		l.t.Fatal(err)
	}
}

// partition cuts (or, with heal, restores) the link between the bridges.
func (l *lab) partition(heal bool) {
	l.t.Helper()
	state := "down"
	if heal {
		state = "up"
	}
	if err := run("ip", "-n", l.ns("br"), "link", "set", "bx", state); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) destroy() {
	for i := 1; i <= l.n; i++ {
		exec.Command("ip", "netns", "del", l.host(i)).Run()
	}
	exec.Command("ip", "netns", "del", l.ns("br")).Run()
}

// start runs a binary on host i.
func (l *lab) start(i int, name, bin string, args ...string) *proc {
	return startProc(l.t, name, "ip", append([]string{"netns", "exec", l.host(i), bin}, args...)...)
}

// TestMultiHost: three hosts; the second joins the first and the third the
// second, across the bridge; announcements propagate; the third host is cut
// off while the others go on; once its link is back, it catches up.
func TestMultiHost(t *testing.T) {
	l := newLab(t, 3)
	root := t.TempDir()
	adir := filepath.Join(root, "a")
	cli(t, "", "init", "--data", adir)
	tracker := strings.TrimSpace(cli(t, "", "tracker", "create", "--data", adir, "--name", "across"))

	timing := []string{"--nats", "off", "--http", "off", "--heartbeat", "200ms", "--probe-interval", "500ms", "--discovery-interval", "2s",
		"--anti-entropy-interval", "2s", "--log-level", "warn"}
	nodeArgs := func(i int) []string {
		return append([]string{"--listen", "/ip4/" + l.addr(i) + "/tcp/7601", "--gossip-addr", l.addr(i) + ":7946"}, timing...)
	}
	a := l.start(1, "host1", announcerBin, append([]string{"run", "--data", adir}, nodeArgs(1)...)...)
	a.waitReady()
	b := l.start(2, "host2", subscriberBin, append([]string{"--data", filepath.Join(root, "b"), "--join", l.addr(1) + ":7946",
		"--follow", tracker, "--format", "json"}, nodeArgs(2)...)...)
	b.waitReady()
	c := l.start(3, "host3", subscriberBin, append([]string{"--data", filepath.Join(root, "c"), "--join", l.addr(2) + ":7946",
		"--follow", tracker, "--format", "json"}, nodeArgs(3)...)...)
	c.waitReady()

	things := func(p *proc) int {
		n := 0
		for _, e := range p.entries() {
			if e.Kind == topics.KindThing {
				n++
			}
		}
		return n
	}
	waitThings := func(p *proc, want int, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for things(p) < want {
			if time.Now().After(deadline) {
				t.Fatalf("%s printed %d Things, want %d", p.name, things(p), want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	publish := func(prefix string, n int) {
		t.Helper()
		cli(t, ndjson(prefix, n), "publish", "--data", adir, "--tracker", tracker, "-")
	}

	publish("first", 20)
	waitThings(b, 20, 30*time.Second)
	waitThings(c, 20, 30*time.Second)
	t.Logf("across hosts: host2 and host3 printed the first 20 announcements")

	l.link(3, false)
	t.Logf("host3 cut off")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(cli(t, "", "status", "--data", filepath.Join(root, "b")), "1 deaths") {
		if time.Now().After(deadline) {
			t.Fatal("host2 never noticed host3 was gone")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("host2 noticed host3 dead")
	publish("during", 20)
	waitThings(b, 40, 30*time.Second)
	time.Sleep(time.Second)
	if got := things(c); got != 20 {
		t.Fatalf("host3 printed %d Things while cut off, want 20", got)
	}
	t.Logf("while host3 is cut off, host2 printed the next 20")

	l.link(3, true)
	t.Logf("host3 restored")
	waitThings(c, 40, 60*time.Second)
	t.Logf("host3 caught up on what it missed")
	publish("after", 5)
	waitThings(b, 45, 30*time.Second)
	waitThings(c, 45, 30*time.Second)
	for _, p := range []*proc{b, c} {
		seen := map[topics.ID]bool{}
		for _, e := range p.entries() {
			if seen[e.ID] {
				t.Errorf("%s printed %s twice", p.name, e.ID)
			}
			seen[e.ID] = true
			if _, err := topics.Validate(e.Topic, e.Envelope, time.Time{}); err != nil {
				t.Errorf("%s printed an invalid envelope: %v", p.name, err)
			}
		}
	}
	t.Logf("all hosts hold all 45 announcements, each once")
	a.stop()
}

// TestPartition: two groups of hosts cut apart publish independently;
// after the partition heals, every node converges to the same set, with
// nothing lost or duplicated.
func TestPartition(t *testing.T) {
	l := newSplitLab(t, 4, 2)
	root := t.TempDir()
	adir, cdir := filepath.Join(root, "a"), filepath.Join(root, "c")
	cli(t, "", "init", "--data", adir)
	cli(t, "", "init", "--data", cdir)
	t1 := strings.TrimSpace(cli(t, "", "tracker", "create", "--data", adir, "--name", "left"))
	t2 := strings.TrimSpace(cli(t, "", "tracker", "create", "--data", cdir, "--name", "right"))

	timing := []string{"--nats", "off", "--http", "off", "--heartbeat", "200ms", "--probe-interval", "500ms", "--discovery-interval", "2s",
		"--anti-entropy-interval", "2s", "--log-level", "error", "--follow", t1, "--follow", t2}
	nodeArgs := func(i int, join ...int) []string {
		args := append([]string{"--listen", "/ip4/" + l.addr(i) + "/tcp/7601", "--gossip-addr", l.addr(i) + ":7946"}, timing...)
		for _, j := range join {
			args = append(args, "--join", l.addr(j)+":7946")
		}
		return args
	}
	dirs := []string{adir, filepath.Join(root, "b"), cdir, filepath.Join(root, "d")}
	procs := []*proc{
		l.start(1, "host1", announcerBin, append([]string{"run", "--data", dirs[0]}, nodeArgs(1)...)...),
	}
	procs[0].waitReady()
	procs = append(procs, l.start(2, "host2", subscriberBin, append([]string{"--data", dirs[1], "--format", "json"}, nodeArgs(2, 1)...)...))
	procs[1].waitReady()
	procs = append(procs, l.start(3, "host3", announcerBin, append([]string{"run", "--data", dirs[2]}, nodeArgs(3, 2)...)...))
	procs[2].waitReady()
	procs = append(procs, l.start(4, "host4", subscriberBin, append([]string{"--data", dirs[3], "--format", "json"}, nodeArgs(4, 3)...)...))
	procs[3].waitReady()

	converged := func(want int, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			ok := true
			for _, dir := range dirs {
				if len(logIDs(t, dir, t1)) != want || len(logIDs(t, dir, t2)) != want {
					ok = false
				}
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				for i, dir := range dirs {
					t.Logf("host%d holds %d of left, %d of right", i+1, len(logIDs(t, dir, t1)), len(logIDs(t, dir, t2)))
				}
				t.Fatalf("not converged to %d each after %v", want, d)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	cli(t, ndjson("before", 10), "publish", "--data", adir, "--tracker", t1, "-")
	cli(t, ndjson("before", 10), "publish", "--data", cdir, "--tracker", t2, "-")
	converged(11, 60*time.Second)
	t.Logf("before the partition: all four hold both trackers")

	l.partition(false)
	t.Logf("partitioned: hosts 1-2 | hosts 3-4")
	deadline0 := time.Now().Add(30 * time.Second)
	for !strings.Contains(cli(t, "", "status", "--data", dirs[0]), "2 deaths") {
		if time.Now().After(deadline0) {
			t.Fatal("host1 never found the other side dead")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("host1 found hosts 3 and 4 dead")
	cli(t, ndjson("left", 30), "publish", "--data", adir, "--tracker", t1, "-")
	cli(t, ndjson("right", 30), "publish", "--data", cdir, "--tracker", t2, "-")
	deadline := time.Now().Add(30 * time.Second)
	for len(logIDs(t, dirs[1], t1)) != 41 || len(logIDs(t, dirs[3], t2)) != 41 {
		if time.Now().After(deadline) {
			t.Fatal("announcements did not spread within each side")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(logIDs(t, dirs[1], t2)) != 11 || len(logIDs(t, dirs[3], t1)) != 11 {
		t.Fatal("something crossed the partition")
	}
	t.Logf("each side holds its own 30 new announcements, not the other's")

	l.partition(true)
	start := time.Now()
	converged(41, 90*time.Second)
	t.Logf("healed: all four converged to 41 of each tracker in %v", time.Since(start).Round(100*time.Millisecond))
	for _, p := range []*proc{procs[1], procs[3]} {
		seen := map[topics.ID]bool{}
		for _, e := range p.entries() {
			if seen[e.ID] {
				t.Errorf("%s printed %s twice", p.name, e.ID)
			}
			seen[e.ID] = true
		}
		if len(seen) != 82 {
			t.Errorf("%s printed %d announcements, want 82", p.name, len(seen))
		}
	}
}
