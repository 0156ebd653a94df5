package node

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
)

// The control socket: a running node serves the CLI's operations on a Unix
// socket, mode 0600, refusing connections from other users. Each connection
// carries one request, a JSON line, and gets one response line, or, for
// "subscribe", a stream of entry lines until it closes.
const (
	controlSocket  = "control.sock"
	maxSocketPath  = 100 // sun_path holds 108 bytes with its terminator
	maxRequestSize = 512 << 20
)

// ControlPath returns where a node serving dir listens: DIR/control.sock,
// or, when that path is too long for a Unix socket, a socket in a private
// directory under the system's temporary directory, named after dir.
func ControlPath(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	p := filepath.Join(abs, controlSocket)
	if len(p) <= maxSocketPath {
		return p
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(os.TempDir(), "ttn-"+hex.EncodeToString(sum[:8]), controlSocket)
}

// request is a control request; which fields count depends on Op.
type request struct {
	Op        string              `json:"op"`
	Info      *topics.TrackerInfo `json:"info,omitempty"`
	Update    bool                `json:"update,omitempty"`
	Tracker   topics.TrackerID    `json:"tracker,omitzero"`
	Things    []topics.Thing      `json:"things,omitempty"`
	Doc       *ttn.Document       `json:"doc,omitempty"`
	ID        topics.ID           `json:"id,omitzero"`
	Envelopes [][]byte            `json:"envelopes,omitempty"`
	Since     uint64              `json:"since,omitempty"`
	Limit     int                 `json:"limit,omitempty"`
	Trackers  []topics.TrackerID  `json:"trackers,omitempty"`
	Nodes     []string            `json:"nodes,omitempty"`
	Followed  bool                `json:"followed,omitempty"`
}

// response is a control response line.
type response struct {
	Error  string         `json:"error,omitempty"`
	Result jsontext.Value `json:"result,omitempty"`
	Entry  *topics.Entry  `json:"entry,omitempty"` // subscribe streams these
}

type controlServer struct {
	n    *Node
	path string
	ln   *net.UnixListener
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func serveControl(n *Node) (*controlServer, error) {
	path := ControlPath(n.Dir)
	if dir := filepath.Dir(path); dir != n.Dir {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, err
		}
	}
	os.Remove(path) // stale from a crash: this process holds the dir's lock
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	s := &controlServer{n: n, path: path, ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *controlServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func (s *controlServer) close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	os.Remove(s.path)
	return err
}

// peerUID returns the user ID of the process at the other end of c.
func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if credErr != nil {
		return 0, credErr
	}
	return cred.Uid, nil
}

func (s *controlServer) handle(c *net.UnixConn) {
	w := bufio.NewWriter(c)
	reply := func(r response) error {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		w.Write(b)
		w.WriteByte('\n')
		return w.Flush()
	}
	if uid, err := peerUID(c); err != nil || uid != uint32(os.Getuid()) {
		reply(response{Error: "control socket: refused: another user"})
		return
	}
	dec := jsontext.NewDecoder(bufio.NewReader(io.LimitReader(c, maxRequestSize)))
	var req request
	if err := json.UnmarshalDecode(dec, &req); err != nil {
		reply(response{Error: "control socket: bad request: " + err.Error()})
		return
	}
	ctx, cancel := context.WithCancel(s.n.ctx)
	defer cancel()
	if req.Op == "subscribe" {
		s.subscribe(ctx, c, &req, reply)
		return
	}
	result, err := s.n.do(ctx, &req)
	if err != nil {
		reply(response{Error: err.Error()})
		return
	}
	b, err := json.Marshal(result)
	if err != nil {
		reply(response{Error: err.Error()})
		return
	}
	reply(response{Result: b})
}

// subscribe streams entries after req.Since (of followed trackers only,
// with req.Followed) until the client goes away or the node stops.
func (s *controlServer) subscribe(ctx context.Context, c net.Conn, req *request, reply func(response) error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, c) // returns when the client closes
		cancel()
	}()
	r := s.n.Log.NewReader(req.Since)
	for {
		e, err := r.Next(ctx)
		if err != nil {
			return
		}
		if !req.Followed || s.n.Followed(e.Tracker) {
			if reply(response{Entry: &e}) != nil {
				return
			}
		}
	}
}

// do runs one control operation.
func (n *Node) do(ctx context.Context, req *request) (any, error) {
	switch req.Op {
	case "create_tracker", "publish", "import", "retract":
		if err := n.waitOwnSynced(ctx); err != nil {
			return nil, err
		}
	}
	switch req.Op {
	case "create_tracker":
		if req.Info == nil {
			return nil, errors.New("create_tracker needs info")
		}
		return n.CreateTracker(ctx, *req.Info, req.Update)
	case "publish":
		return n.Publish(ctx, req.Tracker, req.Things)
	case "import":
		if req.Doc == nil {
			return nil, errors.New("import needs doc")
		}
		return n.Import(ctx, req.Doc)
	case "retract":
		return n.Retract(ctx, req.ID)
	case "ingest":
		return n.Ingest(ctx, req.Envelopes)
	case "entries":
		return n.Entries(ctx, req.Since, req.Limit)
	case "status":
		return n.Status(ctx)
	case "follow":
		return nil, n.Follow(FollowSet{Trackers: req.Trackers, Nodes: req.Nodes})
	case "unfollow":
		return nil, n.Unfollow(FollowSet{Trackers: req.Trackers, Nodes: req.Nodes})
	case "follows":
		return n.follows.get(), nil
	}
	return nil, fmt.Errorf("unknown operation %q", req.Op)
}

// Entries returns up to limit log entries after since.
func (c *Core) Entries(_ context.Context, since uint64, limit int) ([]topics.Entry, error) {
	return c.Log.Entries(since, limit)
}
