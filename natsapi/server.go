package natsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thingtracker/ttn/internal/hostport"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"golang.org/x/time/rate"
)

// Server is the embedded NATS server, the node's in-process client of it,
// the fan-out of accepted announcements and the request API. Its methods
// may be called concurrently.
type Server struct {
	cfg Config
	b   Backend
	ns  *server.Server
	nc  *nats.Conn // the API's
	// creds are what the node's own connections log in with.
	creds credentials
	svc   micro.Service
	// authed is true when clients must authenticate: only then may they
	// publish through the node.
	authed  bool
	limiter *rate.Limiter

	ctx      context.Context // the server's life: Close cancels it
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the fan-out
	once     sync.Once
	ncClosed chan struct{} // closed when nc is, after Leave's drain
	fanMoved chan struct{} // the fan-out's cursor moved
	fanDone  chan struct{} // the fan-out has stopped

	fanned    atomic.Uint64 // announcements fanned out
	cursor    atomic.Uint64 // last entry fanned out
	fanErrors atomic.Uint64
	limited   atomic.Uint64 // publish requests refused by the rate limit
}

// The names of the node's own connections.
const (
	apiConnName = "ttn-node"
	fanConnName = "ttn-fanout"
)

// startTimeout bounds how long the server may take to accept connections.
const startTimeout = 10 * time.Second

// New starts the server and the fan-out, from the entries after the log's
// current end: plugins read the past through ttn.api.history. It blocks
// until the server accepts connections, at most startTimeout, or until ctx
// is done: then it stops what it started and returns ctx's error. ctx
// bounds the start only; the server runs until Leave or Close.
func New(ctx context.Context, cfg Config, b Backend) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsapi: %w", err)
	}
	opts, creds, authed, err := options(cfg)
	if err != nil {
		return nil, err
	}
	if !opts.DontListen && opts.Port != server.RANDOM_PORT {
		// nats-server only logs a busy port, then waits: say it at once.
		l, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("natsapi: %w", err)
		}
		l.Close()
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsapi: %w", err)
	}
	ns.SetLoggerV2(logger{cfg.Logger}, cfg.Logger.Enabled(context.Background(), slog.LevelDebug), false, false)
	ns.Start()
	s := &Server{cfg: cfg, b: b, ns: ns, authed: authed, creds: creds,
		limiter:  rate.NewLimiter(rate.Limit(cfg.PublishRate), cfg.PublishBurst),
		ncClosed: make(chan struct{}),
		fanMoved: make(chan struct{}, 1),
		fanDone:  make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	fail := func(err error) (*Server, error) {
		s.cancel()
		if s.svc != nil {
			s.svc.Stop()
		}
		if s.nc != nil {
			s.nc.Close()
		}
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, err
	}
	if err := waitReady(ctx, ns); err != nil {
		if ctx.Err() == nil && !opts.DontListen {
			err = fmt.Errorf("natsapi: cannot listen on %s (in use?)", cfg.Addr)
		}
		return fail(err)
	}
	s.nc, err = nats.Connect("", nats.InProcessServer(ns), nats.Name(apiConnName), creds.option(),
		nats.ClosedHandler(func(*nats.Conn) { close(s.ncClosed) }))
	if err != nil {
		return fail(fmt.Errorf("natsapi: in-process client: %w", err))
	}
	if err := s.serveAPI(); err != nil {
		return fail(err)
	}
	// The API's subscriptions are in place when New returns. (nats.go
	// wants a deadline for a flush.)
	fctx, cancel := context.WithTimeout(ctx, startTimeout)
	err = s.nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		return fail(fmt.Errorf("natsapi: %w", err))
	}
	p, err := dialPublisher(ns, creds)
	if err != nil {
		return fail(err)
	}
	s.cursor.Store(b.Last())
	s.wg.Add(1)
	go s.fanOut(s.ctx, p)
	return s, nil
}

// waitReady waits until ns accepts connections, at most startTimeout, or
// until ctx is done.
func waitReady(ctx context.Context, ns *server.Server) error {
	deadline := time.Now().Add(startTimeout)
	for !ns.ReadyForConnections(50 * time.Millisecond) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("natsapi: %w", err)
		}
		if time.Now().After(deadline) {
			return errors.New("natsapi: the server did not start")
		}
	}
	return nil
}

// options builds the server's options and the credentials of the node's
// own connections; authed is true when clients must authenticate.
func options(cfg Config) (opts *server.Options, cr credentials, authed bool, err error) {
	opts = &server.Options{}
	if cfg.ConfigFile != "" {
		o, err := server.ProcessConfigFile(cfg.ConfigFile)
		if err != nil {
			return nil, cr, false, fmt.Errorf("natsapi: %w", err)
		}
		if len(o.Accounts) > 0 || len(o.Nkeys) > 0 || len(o.TrustedOperators) > 0 || len(o.TrustedKeys) > 0 {
			return nil, cr, false, fmt.Errorf("natsapi: %s: accounts, nkeys and operators are not supported; use users with permissions", cfg.ConfigFile)
		}
		opts = o
	}
	opts.NoSigs = true
	if cfg.Addr == "off" {
		opts.DontListen = true
	} else {
		host, port, _ := hostport.Split(cfg.Addr) // checked
		if port == 0 {
			port = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, port
	}
	for _, l := range cfg.Leaf {
		u, _ := leafURL(l) // checked
		opts.LeafNode.Remotes = append(opts.LeafNode.Remotes, &server.RemoteLeafOpts{URLs: []*url.URL{u}})
	}
	for _, r := range opts.LeafNode.Remotes {
		// The cluster's clients may not publish through the node. (Denying
		// ttn.ann.> in would deny it out too: leafnode permissions filter
		// both ways. Plugins that must be sure verify Ttn-Envelope.)
		r.DenyImports = append(r.DenyImports, APIPrefix+"publish")
	}
	switch {
	case cfg.Token != "" && (len(opts.Users) > 0 || opts.Username != ""):
		return nil, cr, false, errors.New("natsapi: a token cannot be combined with users")
	case cfg.Token != "":
		opts.Authorization = cfg.Token
		cr.token = cfg.Token
	case opts.Authorization != "":
		cr.token = opts.Authorization
	case opts.Username != "":
		cr.user, cr.pass = opts.Username, opts.Password
	case len(opts.Users) > 0:
		// The node's own user: unguessable, and only for in-process
		// connections.
		cr.user, cr.pass = "ttn-node-"+randomHex(8), randomHex(32)
		opts.Users = append(opts.Users, &server.User{Username: cr.user, Password: cr.pass,
			AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeInProcess: {}}})
	default:
		return opts, cr, false, nil
	}
	return opts, cr, true, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Addr returns the HOST:PORT clients connect to, "" without a listener.
func (s *Server) Addr() string {
	a, ok := s.ns.Addr().(*net.TCPAddr)
	if !ok || a == nil {
		return ""
	}
	return net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
}

// InProcessConn returns a connection to the server that needs no listener:
// pass the Server to nats.InProcessServer to connect a client living in the
// node's process.
func (s *Server) InProcessConn() (net.Conn, error) { return s.ns.InProcessConn() }

// Stats are the server's counters.
type Stats struct {
	Addr string `json:"addr,omitempty"`
	// Fanned counts the announcements published on ttn.ann.*; Cursor is the
	// last one's, and Lag how many accepted entries wait to go out.
	Fanned uint64 `json:"fanned"`
	Cursor uint64 `json:"cursor"`
	Lag    uint64 `json:"lag"`
	// FanErrors counts announcements that could not be published.
	FanErrors uint64 `json:"fan_errors"`
	// SlowConsumers counts plugin connections the server cut because they
	// did not read fast enough: what they had not read was dropped (they
	// recover it through ttn.api.history).
	SlowConsumers int64 `json:"slow_consumers"`
	Clients       int   `json:"clients"`   // plugin connections
	Leafnodes     int   `json:"leafnodes"` // leafnode connections
	// Requests and RequestErrors count ttn.api.* requests, and those
	// answered with an error; PublishLimited those refused by the rate
	// limit.
	Requests       int    `json:"requests"`
	RequestErrors  int    `json:"request_errors"`
	PublishLimited uint64 `json:"publish_limited"`
}

// plugins counts the client connections other than the node's own.
func (s *Server) plugins() int {
	c, err := s.ns.Connz(&server.ConnzOptions{Limit: math.MaxInt32})
	if err != nil {
		return 0
	}
	n := 0
	for _, ci := range c.Conns {
		if ci.Name != apiConnName && ci.Name != fanConnName {
			n++
		}
	}
	return n
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Addr:   s.Addr(),
		Fanned: s.fanned.Load(), Cursor: s.cursor.Load(), FanErrors: s.fanErrors.Load(),
		SlowConsumers:  s.ns.NumSlowConsumers(),
		Clients:        s.plugins(),
		Leafnodes:      s.ns.NumLeafNodes(),
		PublishLimited: s.limited.Load(),
	}
	if last := s.b.Last(); last > st.Cursor {
		st.Lag = last - st.Cursor
	}
	for _, e := range s.svc.Stats().Endpoints {
		st.Requests += e.NumRequests
		st.RequestErrors += e.NumErrors
	}
	return st
}

// Leave stops the server gracefully: the API takes no new requests and
// answers those under way, and the fan-out publishes what the log held
// when Leave was called; then, or once ctx is done, it closes the server as
// Close does. It returns ctx's error if ctx ended the wait.
func (s *Server) Leave(ctx context.Context) error {
	err := s.leave(ctx)
	if err != nil {
		err = fmt.Errorf("natsapi: leave: %w", err)
	}
	return errors.Join(err, s.Close())
}

func (s *Server) leave(ctx context.Context) error {
	last := s.b.Last()
	// Draining the API's connection lets the handlers under way answer,
	// then closes it.
	if err := s.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return err
	}
	select {
	case <-s.ncClosed:
	case <-ctx.Done():
		return ctx.Err()
	}
	for s.cursor.Load() < last {
		select {
		case <-s.fanMoved:
		case <-s.fanDone:
			return nil // the log closed: nothing more will go out
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close stops the server at once: it cancels the requests under way, stops
// the fan-out and the API, and shuts the server down, dropping every
// client. It is safe to call more than once, and after Leave.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.svc.Stop()
		s.nc.Close()
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	})
	return nil
}

// logger passes the server's messages to slog.
type logger struct{ l *slog.Logger }

func (g logger) Noticef(format string, v ...any) { g.l.Debug(fmt.Sprintf(format, v...)) } // its start-up banner
func (g logger) Warnf(format string, v ...any)   { g.l.Warn(fmt.Sprintf(format, v...)) }
func (g logger) Fatalf(format string, v ...any)  { g.l.Error(fmt.Sprintf(format, v...)) }
func (g logger) Errorf(format string, v ...any)  { g.l.Error(fmt.Sprintf(format, v...)) }
func (g logger) Debugf(format string, v ...any)  { g.l.Debug(fmt.Sprintf(format, v...)) }
func (g logger) Tracef(format string, v ...any)  { g.l.Debug(fmt.Sprintf(format, v...)) }
