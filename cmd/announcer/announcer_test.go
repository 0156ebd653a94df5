package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/gofrs/flock"

	"github.com/thingtracker/ttn/internal/racebuild"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

var binary string // the announcer binary under test

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "announcer-test-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "announcer")
	build := exec.Command("go", append(append([]string{"build"}, racebuild.BuildFlags()...), "-o", binary, ".")...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("build announcer: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary did.
type result struct {
	stdout, stderr string
	code           int
}

// run runs the binary with args, stdin and extra environment.
func run(t *testing.T, stdin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("announcer %v did not finish", args)
	}
	return result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
}

// ok runs the binary and fails the test unless it succeeds.
func ok(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := run(t, stdin, nil, args...)
	if r.code != 0 {
		t.Fatalf("announcer %v: exit %d\n%s", args, r.code, r.stderr)
	}
	return r.stdout
}

func lines(s string) []string { return strings.Fields(s) }

// entries returns the log as Entries.
func entries(t *testing.T, dir string) []view.Entry {
	t.Helper()
	var out []view.Entry
	for _, line := range strings.Split(strings.TrimSpace(ok(t, "", "log", "--data", dir, "--format", "json")), "\n") {
		if line == "" {
			continue
		}
		var e view.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

func TestUserSession(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")

	// Identity.
	first := ok(t, "", "init", "--data", dir)
	if !strings.HasPrefix(first, "node 12D3KooW") || !strings.Contains(first, "\nfingerprint ") {
		t.Fatalf("init printed %q", first)
	}
	// The recovery phrase, shown once: 24 words, kept in no file of the dir.
	printed := strings.Split(strings.TrimSpace(first), "\n")
	identity, phrase := printed[:2], ""
	for _, l := range printed[2:] {
		words, ok := strings.CutPrefix(l, "recovery ")
		if !ok || len(strings.Fields(words)) != 6 {
			t.Fatalf("init printed %q", first)
		}
		phrase += words + " "
	}
	if n := len(strings.Fields(phrase)); n != 24 {
		t.Fatalf("a recovery phrase of %d words: %q", n, first)
	}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if b, rerr := os.ReadFile(path); err == nil && !d.IsDir() && rerr == nil && bytes.Contains(b, []byte(strings.Fields(phrase)[0]+" "+strings.Fields(phrase)[1]+" "+strings.Fields(phrase)[2])) {
			t.Errorf("%s holds the recovery phrase", path)
		}
		return nil
	})
	r := run(t, "", nil, "init", "--data", dir)
	if r.code != 0 || r.stdout != strings.Join(identity, "\n")+"\n" || !strings.Contains(r.stderr, "keeping it") {
		t.Fatalf("second init: %+v", r)
	}
	if r := run(t, "", nil, "key", "commit", "--data", dir); r.code != 1 || !strings.Contains(r.stderr, "already committed") || r.stdout != "" {
		t.Fatalf("key commit after init: %+v", r)
	}
	if st := ok(t, "", "status", "--data", dir); !strings.Contains(st, "committed to a recovery key") {
		t.Fatalf("status after init:\n%s", st)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "identity.key"): 0o600} {
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != want {
			t.Fatalf("%s mode %v, want %v (%v)", path, st.Mode().Perm(), want, err)
		}
	}

	// A tracker, two versions and an edit.
	tracker := strings.TrimSpace(ok(t, "", "tracker", "create", "--data", dir, "--name", "designs", "--title", "My designs"))
	if _, err := topics.ParseTrackerID(tracker); err != nil {
		t.Fatalf("tracker create printed %q", tracker)
	}
	if again := strings.TrimSpace(ok(t, "", "tracker", "create", "--data", dir, "--name", "designs")); again != tracker {
		t.Fatalf("second create printed %q, want %q", again, tracker)
	}
	v1 := ok(t, `{"id":"clip","title":"Cable clip","version":"1"}`, "publish", "--data", dir, "--tracker", tracker, "-")
	ndjson := `{"id":"clip","title":"Cable clip","version":"2"}
{"id":"clip","title":"Cable clip (typo fixed)","version":"1"}
`
	more := ok(t, ndjson, "publish", "--data", dir, "--tracker", tracker, "-")
	if len(lines(v1)) != 1 || len(lines(more)) != 2 {
		t.Fatalf("publish printed %q and %q", v1, more)
	}
	// Identical content is a no-op returning the existing ID.
	r = run(t, `{"id":"clip","title":"Cable clip","version":"2"}`, nil, "publish", "--data", dir, "--tracker", tracker, "-")
	if r.code != 0 || strings.TrimSpace(r.stdout) != lines(more)[0] || !strings.Contains(r.stderr, "unchanged") {
		t.Fatalf("re-publish: %+v", r)
	}

	// A TTN document: the spec's own example, twice.
	spec := filepath.Join("..", "..", "internal", "ttnschema", "spec", "example-tracker.json")
	imported := ok(t, "", "import", "--data", dir, spec)
	if len(lines(imported)) != 2 {
		t.Fatalf("import printed %q, want two announcement IDs", imported)
	}
	r = run(t, "", nil, "import", "--data", dir, spec)
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "0 announced, 2 unchanged") {
		t.Fatalf("re-import: %+v", r)
	}
	// Retract version 2.
	retraction := strings.TrimSpace(ok(t, "", "retract", "--data", dir, lines(more)[0]))

	// The log: chains with seq 1..n and linked prev, every envelope valid.
	es := entries(t, dir)
	type chainPos struct {
		seq uint64
		id  topics.ID
	}
	heads := map[topics.TrackerID]chainPos{}
	for i, e := range es {
		if e.Cursor != uint64(i+1) {
			t.Fatalf("entry %d has cursor %d", i, e.Cursor)
		}
		a, err := topics.Validate(e.Topic, e.Envelope, time.Time{})
		if err != nil {
			t.Fatalf("entry %d does not validate: %v", e.Cursor, err)
		}
		h := heads[e.Tracker]
		if a.Payload.Seq != h.seq+1 || a.Payload.Prev != h.id {
			t.Fatalf("entry %d: seq %d prev %s after seq %d id %s", e.Cursor, a.Payload.Seq, a.Payload.Prev, h.seq, h.id)
		}
		heads[e.Tracker] = chainPos{a.Payload.Seq, a.ID}
	}
	// designs: tracker, v1, v2, edit, retract; the TTN tracker: tracker, two
	// Things; the node tracker: three node records (init's, with the
	// recovery commitment, and one per tracker).
	if len(heads) != 3 || len(es) != 11 || es[len(es)-1].ID.String() != retraction {
		t.Fatalf("log has %d entries in %d chains", len(es), len(heads))
	}
	text := ok(t, "", "log", "--data", dir, "--format", "text", "--since", "9")
	if got := len(strings.Split(strings.TrimSpace(text), "\n")); got != 2 || !strings.Contains(text, "retracts") {
		t.Fatalf("log --since 9 printed %q", text)
	}

	// Export the log to another node, which verifies and keeps it.
	other := filepath.Join(t.TempDir(), "other")
	ok(t, "", "init", "--data", other)
	exported := ok(t, "", "log", "--data", dir, "--format", "json")
	r = run(t, exported, nil, "ingest", "--data", other, "-")
	if r.code != 0 || !strings.Contains(r.stderr, "11 stored") {
		t.Fatalf("ingest: %+v", r)
	}
	if got := entries(t, other); len(got) != 1+len(es) { // its own inception node record, and the ingested
		t.Fatalf("other node holds %d entries, want %d", len(got), 1+len(es))
	}

	// Key export and import into a fresh dir give the same node.
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	ok(t, "", "key", "export", "--data", dir, keyFile)
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("exported key mode: %v %v", st, err)
	}
	moved := filepath.Join(t.TempDir(), "moved")
	if got, want := ok(t, "", "key", "import", "--data", moved, keyFile), strings.Join(identity, "\n")+"\n"; got != want {
		t.Fatalf("key import printed %q, want %q", got, want)
	}
	if r := run(t, "", nil, "key", "import", "--data", moved, keyFile); r.code == 0 {
		t.Fatal("key import replaced an existing identity")
	}
	if r := run(t, "", nil, "key", "export", "--data", dir, keyFile); r.code == 0 {
		t.Fatal("key export overwrote a file")
	}
}

// TestBadInput: each bad input gets one line on stderr naming the problem,
// a non-zero exit, and leaves the log as it was.
func TestBadInput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	ok(t, "", "init", "--data", dir)
	tracker := strings.TrimSpace(ok(t, "", "tracker", "create", "--data", dir, "--name", "x"))
	ok(t, `{"id":"a","title":"A"}`, "publish", "--data", dir, "--tracker", tracker, "-")
	before := ok(t, "", "log", "--data", dir, "--format", "json")
	good := strings.Split(strings.TrimSpace(before), "\n")[2] // the Thing's Entry

	otherTracker := topics.DeriveTrackerID(make([]byte, 32), "x").String()
	tampered := entryWithEnvelope(t, good, func(env []byte) []byte { env[len(env)-70] ^= 1; return env })
	reframed := entryWithEnvelope(t, good, func(env []byte) []byte { return append(env, 0x4a, 0x01, 0x00) })
	badSig := entryWithEnvelope(t, good, func(env []byte) []byte { env[len(env)-1] ^= 1; return env })
	big := fmt.Sprintf(`{"id":"big","title":"Big","description":%q}`, strings.Repeat("x", 70<<10))

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		why   string
	}{
		{"malformed JSON", `{"id":"a",`, []string{"publish", "--tracker", tracker, "-"}, "thing 1"},
		{"duplicate key", `{"id":"a","id":"b","title":"A"}`, []string{"publish", "--tracker", tracker, "-"}, "duplicate"},
		{"mis-cased key", `{"id":"a","Title":"A"}`, []string{"publish", "--tracker", tracker, "-"}, "Title"},
		{"no id", `{"title":"A"}`, []string{"publish", "--tracker", tracker, "-"}, "id is required"},
		{"no title", `{"id":"a"}`, []string{"publish", "--tracker", tracker, "-"}, "title is required"},
		{"second object bad", "{\"id\":\"b\",\"title\":\"B\"}\n{\"id\":\"c\"}\n", []string{"publish", "--tracker", tracker, "-"}, "thing 2"},
		{"unknown tracker", `{"id":"a","title":"A"}`, []string{"publish", "--tracker", otherTracker, "-"}, "unknown tracker"},
		{"bad tracker id", `{"id":"a","title":"A"}`, []string{"publish", "--tracker", "nope", "-"}, "tracker id"},
		{"oversize", big, []string{"publish", "--tracker", tracker, "-"}, "limit"},
		{"tampered envelope", tampered, []string{"ingest", "-"}, "envelope 1"},
		{"bad signature", badSig, []string{"ingest", "-"}, "bad signature"},
		{"re-framed envelope", reframed, []string{"ingest", "-"}, "canonical"},
		{"not an entry", "hello\n", []string{"ingest", "-"}, "line 1"},
		{"bad document", `{"id":"d","things":[{"id":"x"}]}`, []string{"import", "-"}, "title is required"},
		{"retract unknown", "", []string{"retract", strings.Repeat("a", 64)}, "not in the log"},
		{"retract non-thing", "", []string{"retract", firstID(t, before)}, "not a Thing"},
		{"unknown flag", "", []string{"log", "--bogus"}, "bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.args[:1:1], append([]string{"--data", dir}, tc.args[1:]...)...)
			r := run(t, tc.stdin, nil, args...)
			if r.code == 0 {
				t.Fatalf("exit 0; stdout %q", r.stdout)
			}
			msg := strings.TrimSpace(r.stderr)
			if tc.name != "unknown flag" && strings.Contains(msg, "\n") {
				t.Errorf("stderr has several lines: %q", msg)
			}
			if !strings.Contains(msg, tc.why) {
				t.Errorf("stderr %q does not name %q", msg, tc.why)
			}
			if after := ok(t, "", "log", "--data", dir, "--format", "json"); after != before {
				t.Fatal("the log changed")
			}
		})
	}

	t.Run("no identity", func(t *testing.T) {
		empty := t.TempDir()
		r := run(t, "", nil, "log", "--data", empty)
		if r.code == 0 || !strings.Contains(r.stderr, "no identity in "+empty) {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("dir in use", func(t *testing.T) {
		l := flock.New(filepath.Join(dir, "lock"))
		if ok, err := l.TryLock(); !ok || err != nil {
			t.Fatal("lock:", ok, err)
		}
		defer l.Unlock()
		r := run(t, "", nil, "log", "--data", dir)
		if r.code == 0 || !strings.Contains(r.stderr, "data dir in use by another process") {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("key readable by others", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("SKIP: file modes are Unix's; Windows keys are checked by their access list")
		}
		key := filepath.Join(dir, "identity.key")
		os.Chmod(key, 0o644)
		defer os.Chmod(key, 0o600)
		r := run(t, "", nil, "log", "--data", dir)
		if r.code == 0 || !strings.Contains(r.stderr, "chmod 600") {
			t.Fatalf("%+v", r)
		}
	})
}

func firstID(t *testing.T, log string) string {
	var e view.Entry
	if err := json.Unmarshal([]byte(strings.Split(log, "\n")[0]), &e); err != nil {
		t.Fatal(err)
	}
	return e.ID.String()
}

// entryWithEnvelope returns an Entry line whose envelope is changed by fn.
func entryWithEnvelope(t *testing.T, line string, fn func([]byte) []byte) string {
	t.Helper()
	var e view.Entry
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		t.Fatal(err)
	}
	env := fn(bytes.Clone(e.Envelope))
	return fmt.Sprintf(`{"envelope":%q}`+"\n", base64.StdEncoding.EncodeToString(env))
}

// TestConfigPrecedence: a flag beats the environment, which beats the
// configuration file.
func TestConfigPrecedence(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	ok(t, "", "init", "--data", dir)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte("# defaults\nformat json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok(t, "", "tracker", "create", "--data", dir, "--name", "x")
	isJSON := func(s string) bool { return strings.HasPrefix(s, "{") }
	if out := run(t, "", nil, "log", "--data", dir); !isJSON(out.stdout) {
		t.Errorf("config file not applied: %q", out.stdout)
	}
	if out := run(t, "", []string{"TTN_FORMAT=text"}, "log", "--data", dir); isJSON(out.stdout) {
		t.Errorf("environment did not beat the config file: %q", out.stdout)
	}
	if out := run(t, "", []string{"TTN_FORMAT=text"}, "log", "--data", dir, "--format", "json"); !isJSON(out.stdout) {
		t.Errorf("flag did not beat the environment: %q", out.stdout)
	}
	if out := run(t, "", []string{"TTN_DATA=" + dir}, "log", "--format", "text"); out.code != 0 || isJSON(out.stdout) {
		t.Errorf("TTN_DATA not applied: %+v", out)
	}
	if out := run(t, "", nil, "log", "--data", dir, "--config", filepath.Join(t.TempDir(), "none")); isJSON(out.stdout) {
		t.Errorf("--config did not replace the default file: %q", out.stdout)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"publish", "-h"}, {"tracker", "create", "-h"}} {
		r := run(t, "", nil, args...)
		if r.code != 0 || !strings.Contains(r.stderr, "USAGE") {
			t.Errorf("%v: %+v", args, r)
		}
	}
	if r := run(t, "", nil, "tracker"); r.code != 2 {
		t.Errorf("tracker without subcommand: %+v", r)
	}
}

// TestUnknownCommand: a command or subcommand this version lacks, or an
// argument a command does not take, exits 2 with one line on stderr naming
// it, prints nothing and creates nothing: a script calling a command this
// version lacks must not believe it succeeded.
func TestUnknownCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "none")
	unexpected := `announcer: unexpected argument "frobnicate"`
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `announcer: unknown command "frobnicate" (see announcer --help)`},
		{[]string{"frobnicate", "-h"}, `announcer: unknown command "frobnicate" (see announcer --help)`},
		{[]string{"tracker", "frobnicate", "--data", dir}, `announcer: unknown command "tracker frobnicate" (see announcer tracker --help)`},
		{[]string{"key", "frobnicate"}, `announcer: unknown command "key frobnicate" (see announcer key --help)`},
		{[]string{"key", "--data", dir, "export2", "x"}, `announcer: unknown command "key export2" (see announcer key --help)`},
		{[]string{"tracker"}, `announcer: tracker needs a subcommand (see 'announcer tracker -h')`},
		{[]string{"init", "--data", dir, "frobnicate"}, unexpected},
		{[]string{"run", "--data", dir, "frobnicate"}, unexpected},
		{[]string{"status", "--data", dir, "frobnicate"}, unexpected},
		{[]string{"log", "--data", dir, "frobnicate"}, unexpected},
		{[]string{"tracker", "create", "--data", dir, "--name", "x", "frobnicate"}, unexpected},
		{[]string{"demo", "frobnicate"}, unexpected},
		{[]string{"version", "frobnicate"}, unexpected},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := run(t, "", nil, tc.args...)
			if r.code != 2 || r.stdout != "" || r.stderr != tc.want+"\n" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2, stderr %q", r.code, r.stdout, r.stderr, tc.want)
			}
		})
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s was created (%v)", dir, err)
	}
}

// TestVersion: "version" and "--version" print one line naming the
// program, the Go version and the target; "-h" lists the version command.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		r := run(t, "", nil, args...)
		line, rest, _ := strings.Cut(r.stdout, "\n")
		if r.code != 0 || rest != "" || r.stderr != "" {
			t.Errorf("%v: %+v; want one line on stdout", args, r)
		}
		for _, want := range []string{"announcer ", " " + runtime.Version() + " ", runtime.GOOS + "/" + runtime.GOARCH} {
			if !strings.Contains(line, want) {
				t.Errorf("%v printed %q, lacking %q", args, line, want)
			}
		}
	}
	if r := run(t, "", nil, "-h"); !strings.Contains(r.stderr, "version") {
		t.Errorf("-h does not list the version command: %s", r.stderr)
	}
}

// TestDemo runs the README's main command: three nodes, a plugin and the
// HTTP API, and every announcement arrives verified.
func TestDemo(t *testing.T) {
	out := ok(t, "", "demo")
	for _, want := range []string{
		"indexer   follows ",
		"follower  now shows version 1 of \"strandbeest\" as the latest",
		"plugin    received 4 Thing announcements on ttn.ann.",
		"plugin    ttn.api.things {\"tag\":\"fun\"} → \"strandbeest\" version 1",
		"→ a TTN tracker document, 2 Things:",
		"== done: the follower received 6 announcements, the indexer 7",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(out, "INVALID") {
		t.Error("demo showed an invalid announcement")
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", out)
	}
}
