//go:build linux

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thingtracker/ttn/internal/netlab"
	"github.com/thingtracker/ttn/topics"
)

// The multi-host tests run the real binaries on separate hosts: network
// namespaces joined by bridges (internal/netlab), with addresses the test
// assigns. They need root and iproute2; without them they say SKIP
// loudly.

// lab is a set of hosts, 10.213.0.1 … 10.213.0.n, on one or two bridges.
type lab struct {
	t     *testing.T
	hosts []*netlab.Host
	links []*netlab.Link // each host's
	trunk *netlab.Link   // between the bridges, if there are two
}

// newLab creates the bridge and n hosts, 10.213.0.1 … 10.213.0.n.
func newLab(t *testing.T, n int) *lab { return newSplitLab(t, n, n) }

// newSplitLab creates hosts 1…n, those up to split on one bridge and the
// others on a second, the two bridges joined by a link that partition can
// take down: a network that can be partitioned.
func newSplitLab(t *testing.T, n, split int) *lab {
	t.Helper()
	nl := netlab.New(t)
	l := &lab{t: t}
	left := nl.Bridge()
	right := left
	if split < n {
		right = nl.Bridge()
		l.trunk = nl.Trunk(left, right)
	}
	for i := 1; i <= n; i++ {
		bridge := left
		if i > split {
			bridge = right
		}
		h := nl.Host(fmt.Sprintf("h%d", i))
		l.hosts = append(l.hosts, h)
		l.links = append(l.links, h.Attach(bridge, l.addr(i)+"/24"))
	}
	return l
}

func (l *lab) addr(i int) string { return fmt.Sprintf("10.213.0.%d", i) }

// link sets host i's link up or down.
func (l *lab) link(i int, up bool) { l.links[i-1].Set(up) }

// partition cuts (or, with heal, restores) the link between the bridges.
func (l *lab) partition(heal bool) { l.trunk.Set(heal) }

// start runs a binary on host i.
func (l *lab) start(i int, name, bin string, args ...string) *proc {
	return startCmd(l.t, name, l.hosts[i-1].Command(bin, args...))
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
