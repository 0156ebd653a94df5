//go:build unix

package control

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/thingtracker/ttn/feed"
)

// TestRefusesOtherUsers: the socket is 0600; another user is refused by the
// file system, and, should the mode be loosened, by the node itself (the
// kernel's peer credentials).
func TestRefusesOtherUsers(t *testing.T) {
	if os.Getenv("TTN_DIAL_AS_OTHER") != "" {
		dialAsOther(os.Getenv("TTN_DIAL_AS_OTHER"))
		return
	}
	if os.Getuid() != 0 {
		t.Skip("SKIP: needs root to run a process as another user")
	}
	dir, _, s := serve(t, feed.Config{}, nil)
	st, err := os.Stat(s.Path())
	if err != nil || st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %s: %v %v", s.Path(), st.Mode(), err)
	}
	// Let another user reach the socket file, to test the socket itself.
	for d := dir; d != filepath.Dir(filepath.Dir(filepath.Dir(dir))); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	helper := filepath.Join(filepath.Dir(dir), "helper")
	self, _ := os.Executable()
	if b, err := os.ReadFile(self); err != nil || os.WriteFile(helper, b, 0o755) != nil {
		t.Fatal("copy test binary:", err)
	}
	asNobody := func() string {
		cmd := exec.Command(helper, "-test.run=^TestRefusesOtherUsers$")
		cmd.Env = append(os.Environ(), "TTN_DIAL_AS_OTHER="+s.Path())
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
	if err := os.Chmod(s.Path(), 0o666); err != nil {
		t.Fatal(err)
	}
	if out := asNobody(); !strings.Contains(out, "refused: another user") {
		t.Fatalf("another user through a loosened socket: %q", out)
	}
	// The owner is still served.
	if _, err := Dial(context.Background(), dir); err != nil {
		t.Fatal(err)
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

func TestPathFallback(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	p := Path(long)
	if len(p) > maxSocketPath || !strings.HasPrefix(p, os.TempDir()) {
		t.Fatalf("Path of a long dir = %q", p)
	}
	if p != Path(long) {
		t.Fatal("Path is not deterministic")
	}
	if err := os.MkdirAll(long, 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := listen(long, p)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if st, err := os.Stat(filepath.Dir(p)); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("fallback socket dir: %v %v", st, err)
	}
	c, err := dial(context.Background(), p)
	if err != nil {
		t.Fatalf("dial a long dir's socket: %v", err)
	}
	c.Close()
}
