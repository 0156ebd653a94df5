package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// identity inits dir and returns its node ID and fingerprint, as 'announcer
// init' prints them.
func identity(t *testing.T, dir string) (id, fingerprint string) {
	t.Helper()
	out := ok(t, "", "init", "--data", dir)
	if _, err := fmt.Sscanf(out, "node %s\nfingerprint %s\n", &id, &fingerprint); err != nil {
		t.Fatalf("init printed %q: %v", out, err)
	}
	return id, fingerprint
}

// field returns the values of the lines of 'announcer node' text output
// whose key is key.
func field(out, key string) []string {
	var vs []string
	for _, line := range strings.Split(out, "\n") {
		if v, found := strings.CutPrefix(line, key+" "); found {
			vs = append(vs, strings.TrimSpace(v))
		}
	}
	return vs
}

// nodeJSON runs 'announcer node --format json' on dir.
func nodeJSON(t *testing.T, dir, id string) view.NodeDetail {
	t.Helper()
	out := ok(t, "", "node", "--data", dir, "--format", "json", id)
	var d view.NodeDetail
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("node --format json printed %q: %v", out, err)
	}
	return d
}

var recordID = regexp.MustCompile(`^[0-9a-f]{64}\n$`)

// TestTrustOffline drives the trust commands on a data dir with no node
// running, as a user would: each mistake exits non-zero with one line
// saying why and leaves the log as it was; each record is announced once;
// 'announcer node' shows what the records and the block list make of a
// node.
func TestTrustOffline(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "me")
	self, selfPrint := identity(t, dir)
	other, otherPrint := identity(t, filepath.Join(t.TempDir(), "other"))
	logOf := func() string { return ok(t, "", "log", "--data", dir, "--format", "json") }

	// Mistakes: nothing recorded. The fingerprint of another node (this
	// one's) is a mismatch; the rest are usage errors (exit 2).
	tracker := topics.DeriveTrackerID(make([]byte, 32), "x").String()
	for _, tc := range []struct {
		name string
		args []string
		code int
		why  string
	}{
		{"wrong fingerprint", []string{"trust", other, "--level", "verified", "--fingerprint", selfPrint}, 1, "fingerprint does not match"},
		{"garbled fingerprint", []string{"trust", other, "--level", "trusted", "--fingerprint", "nonsense"}, 1, "fingerprint does not match"},
		{"trust without level", []string{"trust", other}, 2, "needs --level"},
		{"trust unknown flag", []string{"trust", other, "--level", "trusted", "--bogus"}, 2, "bogus"},
		{"flag without target", []string{"flag", "--reason", "spam"}, 2, "exactly one target"},
		{"flag with two targets", []string{"flag", "--node", other, "--tracker", tracker, "--reason", "spam"}, 2, "exactly one target"},
		{"flag announcement and node", []string{"flag", strings.Repeat("a", 64), "--node", other, "--reason", "spam"}, 2, "exactly one target"},
		{"flag without reason", []string{"flag", "--node", other}, 2, "needs --reason"},
		{"block nonsense", []string{"block", "nonsense"}, 2, "nonsense"},
		{"block nothing", []string{"block"}, 2, "needs node IDs"},
		{"node nonsense", []string{"node", "nonsense"}, 2, "nonsense"},
		{"dismiss without IDs", []string{"discovered", "--dismiss"}, 2, "each needs IDs"},
		{"IDs without dismiss", []string{"discovered", tracker}, 2, "IDs go with --follow or --dismiss"},
		{"follow and dismiss", []string{"discovered", "--follow", "--dismiss", tracker}, 2, "IDs go with --follow or --dismiss"},
		{"follow a node ID", []string{"discovered", "--follow", other}, 2, "tracker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := logOf()
			args := append(tc.args[:1:1], append([]string{"--data", dir}, tc.args[1:]...)...)
			r := run(t, "", nil, args...)
			msg := strings.TrimSpace(r.stderr)
			if r.code != tc.code || r.stdout != "" || strings.Contains(msg, "\n") || !strings.Contains(msg, tc.why) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and one line naming %q", r.code, r.stdout, r.stderr, tc.code, tc.why)
			}
			if after := logOf(); after != before {
				t.Errorf("the log changed:\n%s", after)
			}
		})
	}
	if d := nodeJSON(t, dir, other); d.Trust.Level != "unknown" || len(d.TrustReceived) != 0 || len(d.Flags.Flags) != 0 {
		t.Fatalf("after the mistakes: %+v", d)
	}

	// The right fingerprint: a record, announced once.
	r := run(t, "", nil, "trust", "--data", dir, other, "--level", "verified", "--fingerprint", otherPrint, "--note", "met at the fair")
	if r.code != 0 || !recordID.MatchString(r.stdout) || r.stderr != "" {
		t.Fatalf("trust: %+v", r)
	}
	trusted := strings.TrimSpace(r.stdout)
	if again := run(t, "", nil, "trust", "--data", dir, "--level", "verified", "--fingerprint", otherPrint, "--note", "met at the fair", other); again.code != 0 ||
		strings.TrimSpace(again.stdout) != trusted || !strings.Contains(again.stderr, "already stands") {
		t.Fatalf("the same trust record again: %+v", again)
	}
	// init's node record (the recovery commitment), then the trust record.
	if es := entries(t, dir); len(es) != 2 || es[1].ID.String() != trusted || es[1].Kind != topics.KindTrust || es[1].Trust != "" {
		t.Fatalf("log after trust: %+v", es)
	}

	text := ok(t, "", "node", "--data", dir, other)
	if got := field(text, "trust"); len(got) != 1 || got[0] != "verified" {
		t.Errorf("node text: trust %q, want verified\n%s", got, text)
	}
	if got := field(text, "fingerprint"); len(got) != 1 || got[0] != otherPrint {
		t.Errorf("node text: fingerprint %q, want %s\n%s", got, otherPrint, text)
	}
	if got := field(text, "said of it"); len(got) != 1 || got[0] != "verified by "+self {
		t.Errorf("node text: said of it %q\n%s", got, text)
	}
	d := nodeJSON(t, dir, other)
	if d.ID != other || d.Fingerprint != otherPrint || d.Trust.Level != "verified" || d.Trust.Hops != 1 || d.Blocked ||
		len(d.TrustReceived) != 1 || d.TrustReceived[0].Author != self || d.TrustReceived[0].ID.String() != trusted ||
		d.TrustReceived[0].Note != "met at the fair" || d.Record != nil {
		t.Fatalf("node --format json: %+v", d)
	}

	// A profile, shown on this node's own detail.
	profile := strings.TrimSpace(ok(t, "", "profile", "--data", dir, "--name", "Ada's shed", "--url", "https://example.org/ada"))
	text = ok(t, "", "node", "--data", dir, self)
	if got := field(text, "name"); len(got) != 1 || got[0] != "Ada's shed" {
		t.Errorf("own node: name %q\n%s", got, text)
	}
	if got := field(text, "trust"); len(got) != 1 || got[0] != "self" {
		t.Errorf("own node: trust %q\n%s", got, text)
	}
	if d := nodeJSON(t, dir, self); d.Name != "Ada's shed" || d.URL != "https://example.org/ada" || d.Record == nil ||
		d.Record.ID.String() != profile || len(d.TrustGiven) != 1 || d.TrustGiven[0].Subject != other {
		t.Fatalf("own node --format json: %+v", d)
	}

	// A flag on the other node: this node's own flag counts alone.
	flag := strings.TrimSpace(ok(t, "", "flag", "--data", dir, "--node", other, "--reason", "spam"))
	if _, err := topics.ParseID(flag); err != nil {
		t.Fatalf("flag printed %q", flag)
	}
	text = ok(t, "", "node", "--data", dir, self)
	if got, want := field(text, "flagged"), []string{"node:" + other + ": spam", "no (0 flags)"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("own node: flagged %q, want %q\n%s", got, want, text)
	}
	text = ok(t, "", "node", "--data", dir, other)
	if got := field(text, "flagged"); len(got) != 1 || got[0] != "yes (1 flags)" {
		t.Errorf("flagged node: flagged %q\n%s", got, text)
	}
	if d := nodeJSON(t, dir, other); !d.Flags.Flagged || len(d.Flags.Flags) != 1 || d.Flags.Flags[0].Author != self ||
		d.Flags.Flags[0].Reason != "spam" || d.Flags.Flags[0].ID.String() != flag || !d.Flags.Flags[0].Counts {
		t.Fatalf("flagged node --format json: %+v", d.Flags)
	}
	// An announcement flagged, its ID first as the usage line has it.
	ok(t, "", "flag", "--data", dir, trusted, "--reason", "other", "--note", "a test")
	// Withdrawn, the node's flag stands no more; the other does.
	ok(t, "", "flag", "--data", dir, "--node", other, "--withdraw")
	if d := nodeJSON(t, dir, other); d.Flags.Flagged || len(d.Flags.Flags) != 0 {
		t.Fatalf("after --withdraw: %+v", d.Flags)
	}
	if d := nodeJSON(t, dir, self); len(d.FlagsMade) != 1 || d.FlagsMade[0].Target != "announcement:"+trusted ||
		d.FlagsMade[0].Reason != "other" || d.FlagsMade[0].Note != "a test" {
		t.Fatalf("after --withdraw, own flags: %+v", d.FlagsMade)
	}

	// The block list: local, announced nowhere.
	before := logOf()
	if r := run(t, "", nil, "block", "--data", dir, other); r.code != 0 || r.stdout != "" {
		t.Fatalf("block: %+v", r)
	}
	text = ok(t, "", "node", "--data", dir, other)
	if got := field(text, "trust"); len(got) != 1 || got[0] != "blocked (on the local block list)" {
		t.Errorf("blocked node: trust %q\n%s", got, text)
	}
	if d := nodeJSON(t, dir, other); d.Trust.Level != "blocked" || !d.Blocked {
		t.Errorf("blocked node --format json: %+v", d)
	}
	ok(t, "", "unblock", "--data", dir, other)
	if d := nodeJSON(t, dir, other); d.Trust.Level != "verified" || d.Blocked {
		t.Errorf("unblocked node: %+v", d)
	}
	if after := logOf(); after != before {
		t.Errorf("block and unblock changed the log:\n%s", after)
	}

	// The listening-mode list of a fresh dir: the header alone.
	out := ok(t, "", "discovered", "--data", dir)
	if fs := strings.Fields(out); strings.Count(out, "\n") != 1 || len(fs) == 0 || fs[0] != "TRACKER" {
		t.Errorf("discovered printed %q, want the header only", out)
	}
	if out := ok(t, "", "discovered", "--data", dir, "--format", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("discovered --format json printed %q, want []", out)
	}
	ok(t, "", "discovered", "--data", dir, "--follow", tracker)
	if st := ok(t, "", "status", "--data", dir); !strings.Contains(st, "follow     tracker "+tracker) {
		t.Errorf("discovered --follow %s: status shows no such follow:\n%s", tracker, st)
	}
}

// runNode is an 'announcer run' process on loopback.
type runNode struct {
	cmd   *exec.Cmd
	ready chan string // the ready line, once
	done  chan struct{}
}

// startNode runs 'announcer run' on dir, on loopback with ephemeral ports
// and no APIs, waits for its ready line, and stops it when the test ends.
func startNode(t *testing.T, dir string) *runNode {
	t.Helper()
	cmd := exec.Command(binary, "run", "--data", dir, "--listen", "/ip4/127.0.0.1/tcp/0", "--gossip-addr", "127.0.0.1:0",
		"--nats", "off", "--http", "off", "--log-level", "warn")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &runNode{cmd: cmd, ready: make(chan string, 1), done: make(chan struct{})}
	go func() {
		defer close(n.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "ready: ") {
				n.ready <- line
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			cmd.Process.Kill()
		}
		select {
		case <-n.done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-n.done
		}
	})
	select {
	case <-n.ready:
	case <-n.done:
		t.Fatal("announcer run exited before it was ready")
	case <-time.After(30 * time.Second):
		t.Fatal("announcer run printed no ready line")
	}
	return n
}

// TestTrustThroughNode: with a node running on the dir, the trust
// commands go through its control socket (the dir is the node's), and the
// log it serves shows each entry's author's level: self for its own.
func TestTrustThroughNode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "me")
	self, _ := identity(t, dir)
	other, otherPrint := identity(t, filepath.Join(t.TempDir(), "other"))
	startNode(t, dir)

	trusted := strings.TrimSpace(ok(t, "", "trust", "--data", dir, other, "--level", "verified", "--fingerprint", otherPrint))
	if _, err := topics.ParseID(trusted); err != nil {
		t.Fatalf("trust printed %q", trusted)
	}
	if r := run(t, "", nil, "trust", "--data", dir, other, "--level", "verified", "--fingerprint", otherPrint); r.code != 0 ||
		strings.TrimSpace(r.stdout) != trusted || !strings.Contains(r.stderr, "already stands") {
		t.Fatalf("the same trust record again: %+v", r)
	}
	if r := run(t, "", nil, "trust", "--data", dir, other, "--level", "verified", "--fingerprint", "nonsense"); r.code != 1 ||
		!strings.Contains(r.stderr, "fingerprint does not match") {
		t.Fatalf("a wrong fingerprint through the node: %+v", r)
	}

	es := entries(t, dir)
	found := false
	for _, e := range es {
		if e.Author == self && e.Trust != "self" {
			t.Errorf("own entry %d (%s) shows trust %q, want self", e.Cursor, e.Kind, e.Trust)
		}
		found = found || e.ID.String() == trusted
	}
	if !found {
		t.Fatalf("the trust record %s is not in the log: %+v", trusted, es)
	}
	raw := ok(t, "", "log", "--data", dir, "--format", "json")
	if !strings.Contains(raw, `"trust":"self"`) {
		t.Errorf("log --format json lacks \"trust\":\"self\":\n%s", raw)
	}

	// The node takes its stored records into its book as it watches its
	// log: the level follows shortly.
	wait.For(t, 10*time.Second, func() error {
		if d := nodeJSON(t, dir, other); d.Trust.Level != "verified" || len(d.TrustReceived) != 1 || d.TrustReceived[0].ID.String() != trusted {
			return fmt.Errorf("node through the socket: %+v", d)
		}
		return nil
	})
	ok(t, "", "block", "--data", dir, other)
	if d := nodeJSON(t, dir, other); d.Trust.Level != "blocked" || !d.Blocked {
		t.Fatalf("blocked through the socket: %+v", d)
	}
}
