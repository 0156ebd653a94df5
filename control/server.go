package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/view"
)

// Handler is what a running node serves on the channel: the operations on
// its dir, its follows, and a stream of its entries. Its methods may be
// called concurrently.
type Handler interface {
	Operations
	Follow(ctx context.Context, fs datadir.FollowSet) error
	Unfollow(ctx context.Context, fs datadir.FollowSet) error
	Follows(ctx context.Context) (datadir.FollowSet, error)
	// Stream sends the entries after since (of followed trackers only,
	// with followed) to send as they arrive, until ctx is done or send
	// fails.
	Stream(ctx context.Context, since uint64, followed bool, send func(*view.Entry) error) error
}

// Server serves a Handler on a data dir's control channel.
type Server struct {
	h      Handler
	log    *slog.Logger
	path   string
	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Serve starts serving h on dir's control channel (Path(dir)), until Close.
// The caller must own dir. A nil logger discards.
func Serve(dir string, h Handler, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	path := Path(dir)
	ln, err := listen(dir, path)
	if err != nil {
		return nil, err
	}
	s := &Server{h: h, log: logger, path: path, ln: ln, conns: make(map[net.Conn]struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Path returns where the server listens.
func (s *Server) Path() string { return s.path }

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
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

// Close stops serving: it closes the listener and every open connection
// (a request in progress is cut: its client gets ErrNodeGone) and waits
// for the handlers. It is safe to call twice.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) handle(c net.Conn) {
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
	if err := checkPeer(c); err != nil {
		s.log.Warn("control: connection refused", "err", err)
		reply(response{Error: wireError(ErrRefused)})
		return
	}
	c.SetReadDeadline(time.Now().Add(readTimeout))
	req, err := readRequest(c)
	if err != nil {
		reply(response{Error: wireError(err)})
		return
	}
	c.SetReadDeadline(time.Time{})
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	if req.Op == OpSubscribe {
		go func() {
			io.Copy(io.Discard, c) // returns when the client closes
			cancel()
		}()
		s.h.Stream(ctx, req.Since, req.Followed, func(e *view.Entry) error { return reply(response{Entry: e}) })
		return
	}
	result, err := s.do(ctx, req)
	if err == nil {
		var b []byte
		if b, err = json.Marshal(result); err == nil {
			reply(response{Result: b})
			return
		}
	}
	if s.ctx.Err() != nil {
		err = ErrNodeGone // stopping: the operation may or may not be done
	}
	reply(response{Error: wireError(err)})
}

// readRequest reads one request line of at most MaxRequest bytes. What it
// refuses is named without echoing the request: an operation's name is
// quoted only when it is short and printable.
func readRequest(c net.Conn) (*request, error) {
	r := &countingReader{r: io.LimitReader(c, MaxRequest+1)}
	dec := jsontext.NewDecoder(bufio.NewReader(r))
	var req request
	if err := json.UnmarshalDecode(dec, &req); err != nil {
		var ne net.Error
		switch {
		case r.n > MaxRequest:
			return nil, fmt.Errorf("%w: larger than %d MiB", ErrBadRequest, MaxRequest>>20)
		case errors.As(err, &ne) && ne.Timeout():
			return nil, fmt.Errorf("%w: no request within %v", ErrBadRequest, readTimeout)
		}
		return nil, fmt.Errorf("%w: not a request: %s", ErrBadRequest, shortReason(err))
	}
	return &req, nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// shortReason is a JSON error without the input it quotes: the position
// and what was wrong.
func shortReason(err error) string {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		return fmt.Sprintf("malformed JSON at byte %d", se.ByteOffset)
	}
	var je *json.SemanticError
	if errors.As(err, &je) {
		return fmt.Sprintf("a wrong type at %s", je.JSONPointer)
	}
	return "unreadable"
}

// do runs one operation.
func (s *Server) do(ctx context.Context, req *request) (any, error) {
	h := s.h
	switch req.Op {
	case OpCreateTracker:
		if req.Info == nil {
			return nil, fmt.Errorf("%w: create_tracker needs info", ErrBadRequest)
		}
		return h.CreateTracker(ctx, *req.Info, req.Update)
	case OpPublish:
		return h.Publish(ctx, req.Tracker, req.Things, req.Publish)
	case OpImport:
		if req.Doc == nil {
			return nil, fmt.Errorf("%w: import needs doc", ErrBadRequest)
		}
		return h.Import(ctx, req.Doc)
	case OpRetract:
		return h.Retract(ctx, req.ID)
	case OpIngest:
		return h.Ingest(ctx, req.Envelopes)
	case OpEntries:
		return h.Entries(ctx, req.Since, req.Limit)
	case OpStatus:
		return h.Status(ctx)
	case OpFollow:
		return nil, h.Follow(ctx, req.Follows)
	case OpUnfollow:
		return nil, h.Unfollow(ctx, req.Follows)
	case OpFollows:
		return h.Follows(ctx)
	case OpTrust:
		if req.Trust == nil {
			return nil, fmt.Errorf("%w: trust needs trust", ErrBadRequest)
		}
		t := req.Trust
		return h.Trust(ctx, t.Subject, t.Level, t.Fingerprint, t.Note)
	case OpFlag:
		if req.Flag == nil {
			return nil, fmt.Errorf("%w: flag needs flag", ErrBadRequest)
		}
		return h.Flag(ctx, *req.Flag)
	case OpProfile:
		if req.Profile == nil {
			return nil, fmt.Errorf("%w: profile needs profile", ErrBadRequest)
		}
		return h.SetProfile(ctx, *req.Profile)
	case OpBlock, OpUnblock:
		return nil, h.Block(ctx, req.Nodes, req.Op == OpBlock)
	case OpNode:
		if len(req.Nodes) != 1 {
			return nil, fmt.Errorf("%w: node needs one node ID", ErrBadRequest)
		}
		return h.NodeDetail(ctx, req.Nodes[0])
	case OpDiscovered:
		return h.Discovered(ctx)
	case OpDismiss:
		return nil, h.Dismiss(ctx, req.Nodes)
	case OpCommit:
		return h.Commit(ctx, req.Commit)
	case OpSearch:
		if req.Search == nil {
			return nil, fmt.Errorf("%w: search needs search", ErrBadRequest)
		}
		q := *req.Search
		if err := q.Check(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		return h.Search(ctx, q)
	case OpReindex:
		return nil, h.Reindex(ctx)
	case OpRotate:
		k, err := crypto.UnmarshalPrivateKey(req.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: rotate: %v", ErrBadRequest, err)
		}
		return h.Rotate(ctx, k, req.Commit, req.Reason)
	}
	if len(req.Op) <= 32 && printable(req.Op) {
		return nil, fmt.Errorf("%w: unknown operation %q", ErrBadRequest, req.Op)
	}
	return nil, fmt.Errorf("%w: unknown operation", ErrBadRequest)
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return false
		}
	}
	return true
}
