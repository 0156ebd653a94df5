package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thingtracker/ttn/internal/wait"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
)

// fastConfig runs a node on loopback with shrunk timings.
func fastConfig(dir string, join ...string) Config {
	return Config{
		Dir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, GossipAddr: "127.0.0.1:0", Join: join,
		Heartbeat: 100 * time.Millisecond, ProbeInterval: 200 * time.Millisecond,
		DiscoveryInterval: time.Second, ReadyTimeout: 5 * time.Second,
	}
}

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	if err := n.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOfflineBacklogAnnounced: what was appended while no node ran goes
// out when the node runs, and the CLI goes through the control socket
// while it runs.
func TestOfflineBacklogAnnounced(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	adir, bdir := filepath.Join(root, "a"), filepath.Join(root, "b")
	id, _, err := InitIdentity(adir)
	if err != nil {
		t.Fatal(err)
	}
	tracker := topics.DeriveTrackerID(id.RawKey, "offline")

	// b follows the tracker before it exists.
	b := startNode(t, func() Config {
		c := fastConfig(bdir)
		c.Follow = FollowSet{Trackers: []topics.TrackerID{tracker}}
		return c
	}())

	// a appends offline: no node runs on its dir.
	d, err := Open(adir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(*Core); !ok {
		t.Fatalf("Open without a node gave %T", d)
	}
	if _, err := d.CreateTracker(ctx, topics.TrackerInfo{Name: "offline"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Publish(ctx, tracker, []topics.Thing{{ID: "t", Title: "T", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	d.Close()

	startNode(t, fastConfig(adir, b.GossipAddr()))
	wait.For(t, 10*time.Second, func() error {
		es, err := b.Log.Entries(0, 100)
		if err != nil || len(es) != 2 {
			return fmt.Errorf("b holds %d entries of the backlog (%v)", len(es), err)
		}
		return nil
	})

	// While a runs, the CLI's operations go through its socket.
	d, err = Open(adir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(*Client); !ok {
		t.Fatalf("Open with a running node gave %T", d)
	}
	if _, err := d.Publish(ctx, tracker, []topics.Thing{{ID: "u", Title: "U", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if b.Log.Last() != 3 {
			return fmt.Errorf("b holds %d entries", b.Log.Last())
		}
		return nil
	})
	if _, err := OpenCore(adir, feed.Config{}); !errors.Is(err, ErrDirInUse) {
		t.Fatalf("second opener: %v", err)
	}

	// Status, through the socket.
	s, err := d.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Running || s.Peers != 1 || len(s.Members) != 1 || s.Log.Entries != 4 || len(s.Heads) != 2 || s.Gaps() != 0 || s.Forks() != 0 {
		t.Fatalf("status = %+v", s)
	}
	for _, h := range s.Heads {
		if h.Tracker == tracker && h.Seq != 3 {
			t.Errorf("head of %s at %d, want 3", tracker, h.Seq)
		}
	}
	bs, err := b.Status(ctx)
	// The backlog arrives live or, when b's follow fetched it first, by
	// sync: either way each of the three once.
	if err != nil || len(bs.Follows.Trackers) != 1 || bs.Follows.Trackers[0] != tracker || bs.Net.Accepted+bs.Sync.Stored != 3 {
		t.Fatalf("b status = %+v, %v", bs, err)
	}
}

// TestControlSocketRefusesOtherUsers: the socket is 0600; another user is
// refused by the file system, and, should the mode be loosened, by the
// node itself (SO_PEERCRED).
func TestControlSocketRefusesOtherUsers(t *testing.T) {
	if os.Getenv("TTN_DIAL_AS_OTHER") != "" {
		dialAsOther(os.Getenv("TTN_DIAL_AS_OTHER"))
		return
	}
	if os.Getuid() != 0 {
		t.Skip("SKIP: needs root to run a process as another user")
	}
	root := t.TempDir()
	n := startNode(t, fastConfig(filepath.Join(root, "node")))
	st, err := os.Stat(n.ControlPath())
	if err != nil || st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %s: %v %v", n.ControlPath(), st.Mode(), err)
	}
	// Let another user reach the socket file, to test the socket itself.
	for _, d := range []string{filepath.Dir(root), root, n.Dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	helper := filepath.Join(root, "helper")
	self, _ := os.Executable()
	if b, err := os.ReadFile(self); err != nil || os.WriteFile(helper, b, 0o755) != nil {
		t.Fatal("copy test binary:", err)
	}
	asNobody := func() string {
		cmd := exec.Command(helper, "-test.run=^TestControlSocketRefusesOtherUsers$")
		cmd.Env = append(os.Environ(), "TTN_DIAL_AS_OTHER="+n.ControlPath())
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Sprintf("%s (%v)", out, err)
		}
		return string(out)
	}
	if out := asNobody(); !strings.HasPrefix(out, "dial:") || !strings.Contains(out, "permission denied") {
		t.Fatalf("another user through a 0600 socket: %q", out)
	}
	if err := os.Chmod(n.ControlPath(), 0o666); err != nil {
		t.Fatal(err)
	}
	if out := asNobody(); !strings.Contains(out, "refused: another user") {
		t.Fatalf("another user through a loosened socket: %q", out)
	}
}

// dialAsOther runs in the helper process: it sends a status request and
// prints what it got.
func dialAsOther(path string) {
	c, err := net.Dial("unix", path)
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(0)
	}
	fmt.Fprintln(c, `{"op":"status"}`)
	b, _ := io.ReadAll(c)
	fmt.Println(string(b))
	os.Exit(0)
}

func TestControlPathFallback(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	p := ControlPath(long)
	if len(p) > maxSocketPath || !strings.HasPrefix(p, os.TempDir()) {
		t.Fatalf("ControlPath of a long dir = %q", p)
	}
	if p != ControlPath(long) {
		t.Fatal("ControlPath is not deterministic")
	}
	n := startNode(t, fastConfig(long))
	if _, err := Dial(long); err != nil {
		t.Fatalf("dial a node with a long dir: %v", err)
	}
	if st, err := os.Stat(filepath.Dir(n.ControlPath())); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("fallback socket dir: %v %v", st, err)
	}
}
