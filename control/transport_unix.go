//go:build unix

package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

const (
	socketName    = "control.sock"
	maxSocketPath = 100 // sun_path holds 104 (macOS) or 108 (Linux) bytes with its terminator
)

// Path returns where a node serving dir listens: DIR/control.sock, or, when
// that path is too long for a Unix socket, a socket in a private directory
// under the system's temporary directory, named after dir.
func Path(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	p := filepath.Join(abs, socketName)
	if len(p) <= maxSocketPath {
		return p
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(os.TempDir(), "ttn-"+hex.EncodeToString(sum[:8]), socketName)
}

// listen opens the socket at path, readable and writable by the owner only.
// A stale socket left by a crash is removed: the caller owns the dir's lock.
func listen(dir, path string) (net.Listener, error) {
	if d := filepath.Dir(path); d != dir {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, err
		}
	}
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// dial connects to the socket at path; ErrNoNode when nobody listens there.
func dial(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, ErrNoNode
	}
	return c, err
}

// checkPeer refuses a connection from a process of another user, asking
// the kernel who is at the other end (peerUID, per OS).
func checkPeer(c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ErrRefused
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var uid uint32
	var uidErr error
	if err := raw.Control(func(fd uintptr) { uid, uidErr = peerUID(int(fd)) }); err != nil {
		return err
	}
	if uidErr != nil {
		return fmt.Errorf("%w: %v", ErrRefused, uidErr)
	}
	if uid != uint32(os.Getuid()) {
		return ErrRefused
	}
	return nil
}
