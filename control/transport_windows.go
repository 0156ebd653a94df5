package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

// Path returns the named pipe a node serving dir listens on:
// \\.\pipe\ttn-<hash of the dir's absolute path>.
func Path(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	sum := sha256.Sum256([]byte(abs))
	return `\\.\pipe\ttn-` + hex.EncodeToString(sum[:8])
}

// listen creates the named pipe with a protected access list that grants
// the current user, and nobody else, access: Windows itself refuses other
// users' connections, as the kernel's check does on Unix. The pipe is
// created for the first instance only, so a second process cannot take
// the name over.
func listen(_, path string) (net.Listener, error) {
	user, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, err
	}
	sd := fmt.Sprintf("D:P(A;;GA;;;%s)", user.User.Sid)
	ln, err := winio.ListenPipe(path, &winio.PipeConfig{SecurityDescriptor: sd, InputBufferSize: 64 << 10, OutputBufferSize: 64 << 10})
	if err != nil {
		return nil, fmt.Errorf("control pipe: %w", err)
	}
	return ln, nil
}

// dial connects to the pipe; ErrNoNode when it does not exist.
func dial(ctx context.Context, path string) (net.Conn, error) {
	c, err := winio.DialPipeContext(ctx, path)
	if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
		return nil, ErrNoNode
	}
	return c, err
}

// checkPeer admits every connection: the pipe's access list already
// refused other users.
func checkPeer(net.Conn) error { return nil }
