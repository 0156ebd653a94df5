package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/thingtracker/ttn/internal/racebuild"
	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// The binaries under test, built once.
var announcerBin, subscriberBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ttn-e2e-")
	if err != nil {
		panic(err)
	}
	announcerBin = filepath.Join(dir, "announcer")
	subscriberBin = filepath.Join(dir, "subscriber")
	for bin, pkg := range map[string]string{announcerBin: "../announcer", subscriberBin: "."} {
		build := exec.Command("go", append(append([]string{"build"}, racebuild.BuildFlags()...), "-o", bin, pkg)...)
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			panic("build " + pkg + ": " + err.Error())
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fast are the flags every test process gets: loopback only, ephemeral
// ports, shrunk timings.
var fast = []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--gossip-addr", "127.0.0.1:0", "--nats", "0", "--http", "0",
	"--heartbeat", "100ms", "--probe-interval", "200ms", "--discovery-interval", "2s", "--log-level", "warn"}

// proc is a running node process: its stdout lines and what its stderr
// said.
type proc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	gossip chan string // the gossip address, once
	ready  chan string // the ready line, once
	done   chan struct{}

	mu    sync.Mutex
	lines []string
}

func startProc(t testing.TB, name, bin string, args ...string) *proc {
	t.Helper()
	return startCmd(t, name, exec.Command(bin, args...))
}

// startCmd starts cmd as the node process called name.
func startCmd(t testing.TB, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: cmd, gossip: make(chan string, 1), ready: make(chan string, 1), done: make(chan struct{})}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "gossip "):
				p.gossip <- strings.TrimPrefix(line, "gossip ")
			case strings.HasPrefix(line, "ready: "):
				p.ready <- line
			default:
				t.Logf("%s: %s", name, line)
			}
		}
	}()
	go func() {
		wg.Wait()
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// waitReady waits for the ready line and returns the gossip address.
func (p *proc) waitReady() string {
	p.t.Helper()
	var addr string
	select {
	case addr = <-p.gossip:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("%s printed no gossip address", p.name)
	}
	select {
	case <-p.ready:
	case <-p.done:
		p.t.Fatalf("%s exited before it was ready", p.name)
	case <-time.After(30 * time.Second):
		p.t.Fatalf("%s never printed its ready line", p.name)
	}
	return addr
}

// stop sends SIGTERM and waits for the process to exit.
func (p *proc) stop() {
	if p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// entries decodes the process's JSON output.
func (p *proc) entries() []view.Entry {
	p.t.Helper()
	var out []view.Entry
	for _, line := range p.output() {
		var e view.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			p.t.Fatalf("%s printed %q: %v", p.name, line, err)
		}
		out = append(out, e)
	}
	return out
}

// cli runs the announcer command line against dir.
func cli(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(announcerBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("announcer %v: %v: %s", args, err, stderr.String())
	}
	return string(out)
}

// ndjson returns n Things as NDJSON.
func ndjson(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"id":"%s-%d","title":"Thing %d of %s","tags":["e2e"]}`+"\n", prefix, i, i, prefix)
	}
	return b.String()
}

// TestNetwork: an announcer and four subscribers, each joining the one
// before it; 200 announcements on two trackers; each follower prints
// exactly its tracker's, once; the promiscuous one prints all; every
// printed envelope verifies; a restarted subscriber reprints nothing.
func TestNetwork(t *testing.T) {
	root := t.TempDir()
	adir := filepath.Join(root, "announcer")
	ann := startProc(t, "announcer", announcerBin, append([]string{"run", "--data", adir}, fast...)...)
	prev := ann.waitReady()
	x := strings.TrimSpace(cli(t, "", "tracker", "create", "--data", adir, "--name", "x"))
	y := strings.TrimSpace(cli(t, "", "tracker", "create", "--data", adir, "--name", "y"))

	type sub struct {
		name string
		args []string
		want string // "x", "y" or "all"
	}
	subs := []sub{
		{"s1", []string{"--follow", x}, "x"},
		{"s2", []string{"--follow", x}, "x"},
		{"s3", []string{"--follow", y}, "y"},
		{"s4", []string{"--promiscuous"}, "all"},
	}
	procs := map[string]*proc{}
	argsOf := map[string][]string{}
	for _, s := range subs {
		args := append([]string{"--data", filepath.Join(root, s.name), "--join", prev, "--format", "json"}, fast...)
		args = append(args, s.args...)
		argsOf[s.name] = args
		procs[s.name] = startProc(t, s.name, subscriberBin, args...)
		prev = procs[s.name].waitReady() // the next one joins this one
	}

	published := map[string][]string{
		"x": strings.Fields(cli(t, ndjson("x", 100), "publish", "--data", adir, "--tracker", x, "-")),
		"y": strings.Fields(cli(t, ndjson("y", 100), "publish", "--data", adir, "--tracker", y, "-")),
	}
	published["all"] = append(append([]string(nil), published["x"]...), published["y"]...)

	// printedAll waits until every subscriber has printed what it follows.
	printedAll := func() {
		t.Helper()
		for _, s := range subs {
			want := map[string]bool{}
			for _, id := range published[s.want] {
				want[id] = true
			}
			wait.For(t, 30*time.Second, func() error {
				got := 0
				for _, e := range procs[s.name].entries() {
					if want[e.ID.String()] {
						got++
					}
				}
				if got < len(want) {
					return fmt.Errorf("%s printed %d of %d announcements", s.name, got, len(want))
				}
				return nil
			})
		}
	}
	printedAll()
	// Sentinels, published once everything else is printed: once they are
	// printed too, anything printed twice or from elsewhere would show.
	for _, name := range []string{"x", "y"} {
		id := strings.TrimSpace(cli(t, ndjson("sentinel", 1), "publish", "--data", adir, "--tracker", map[string]string{"x": x, "y": y}[name], "-"))
		published[name] = append(published[name], id)
		published["all"] = append(published["all"], id)
	}
	printedAll()
	trackers := map[string]bool{x: true, y: true}
	for _, s := range subs {
		seen := map[topics.ID]bool{}
		for _, e := range procs[s.name].entries() {
			if seen[e.ID] {
				t.Errorf("%s printed %s twice", s.name, e.ID)
			}
			seen[e.ID] = true
			if _, err := topics.Validate(e.Topic, e.Envelope, time.Time{}); err != nil {
				t.Errorf("%s printed an envelope that does not verify: %v", s.name, err)
			}
			switch {
			case s.want == "all" && !trackers[e.Tracker.String()] && e.Kind != topics.KindNode:
				t.Errorf("%s printed an entry of tracker %s", s.name, e.Tracker)
			case s.want != "all" && e.Tracker.String() != map[string]string{"x": x, "y": y}[s.want]:
				t.Errorf("%s printed an entry of tracker %s", s.name, e.Tracker)
			}
		}
		things := 0
		for _, e := range procs[s.name].entries() {
			if e.Kind == topics.KindThing {
				things++
			}
		}
		if things != len(published[s.want]) {
			t.Errorf("%s printed %d Things, want %d", s.name, things, len(published[s.want]))
		}
	}

	// The announcer's status shows its peers, chains and log.
	status := cli(t, "", "status", "--data", adir)
	for _, want := range []string{"state           running", "peers           4 connected, 4 members",
		"chains          3, 0 gaps, 0 forks", "log             206 entries", "follows         0 trackers, 0 nodes"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}

	// A restarted subscriber resumes: it reprints nothing, then prints what
	// is new.
	procs["s1"].stop()
	again := startProc(t, "s1 again", subscriberBin, argsOf["s1"]...)
	again.waitReady()
	one := strings.TrimSpace(cli(t, ndjson("late", 1), "publish", "--data", adir, "--tracker", x, "-"))
	wait.For(t, 20*time.Second, func() error {
		if len(again.output()) == 0 {
			return errors.New("restarted s1 printed nothing")
		}
		return nil
	})
	// Output is in log order: a reprint would come before the new entry.
	if es := again.entries(); len(es) != 1 || es[0].ID.String() != one {
		t.Fatalf("restarted s1 printed %v, want only %s", es, one)
	}
}
