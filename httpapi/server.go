package httpapi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// Bounds of a request.
const (
	requestTimeout      = 30 * time.Second
	defaultTrackersPage = 100
	maxTrackersPage     = 500
)

// Server is the HTTP server. Its methods may be called concurrently.
type Server struct {
	cfg   Config
	b     Backend
	ln    net.Listener
	srv   *http.Server
	feeds chan struct{}  // a token per feed client served
	done  chan struct{}  // closed by Leave or Close: feeds end
	wg    sync.WaitGroup // the serving goroutine

	// handlers counts the requests being handled; once closing is set no
	// more are counted (nor served), so that Close can wait for them.
	mu       sync.Mutex
	closing  bool
	handlers sync.WaitGroup

	endFeeds  sync.Once
	closeOnce sync.Once
	closeErr  error
}

// New listens on cfg.Addr and serves b until Leave or Close. It does not
// block: the listener is bound when it returns.
func New(cfg Config, b Backend) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	s := &Server{cfg: cfg, b: b, ln: ln, feeds: make(chan struct{}, cfg.MaxFeeds), done: make(chan struct{})}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{s}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	mux := http.NewServeMux()
	mux.Handle("/v1/things", s.get(s.things, "tracker", "author", "tag", "text", "flagged", "after", "limit"))
	mux.Handle("/v1/things/{tracker}/{thing...}", s.get(s.thing))
	mux.Handle("/v1/search", s.get(s.search, "text", "licence", "tag", "author", "tracker", "trust", "flagged", "from", "limit"))
	mux.Handle("/v1/trackers", s.get(s.trackers, "after", "limit"))
	mux.Handle("/v1/trackers/{id}", s.get(s.tracker))
	mux.Handle("/v1/nodes", s.get(s.nodes))
	mux.Handle("/v1/nodes/{id}", s.get(s.node))
	mux.Handle("/v1/discovered", s.get(s.discovered))
	mux.Handle("/v1/feed", s.get(s.feed, "tracker", "since"))
	mux.Handle("/healthz", s.get(s.health))
	mux.Handle("/metrics", s.get(func(w http.ResponseWriter, r *http.Request) error {
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: errorLog{s}}).ServeHTTP(w, r)
		return nil
	}))
	notFound := handler(func(http.ResponseWriter, *http.Request) error {
		return &apiError{http.StatusNotFound, "no such endpoint (see /v1/things, /v1/search, /v1/trackers, /v1/nodes, /v1/feed, /metrics, /healthz)"}
	})
	if cfg.Pages != nil {
		mux.Handle("/v1/", notFound)
		mux.Handle("/", withTimeout(cfg.Pages))
	} else {
		mux.Handle("/", notFound)
	}
	s.srv = &http.Server{
		Handler:           s.track(mux),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("http server stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr returns the HOST:PORT the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Leave stops the server gracefully: it stops listening, ends the feeds and
// lets the requests under way finish, until ctx is done; then it closes what
// is left, as Close does, and returns ctx's error.
func (s *Server) Leave(ctx context.Context) error {
	s.endFeeds.Do(func() { close(s.done) })
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = fmt.Errorf("httpapi: leave: %w", err)
	}
	return errors.Join(err, s.Close())
}

// Close stops the server at once: it ends the feeds and closes every
// connection, requests under way or not, and returns once their handlers
// have (the Backend's methods must honour their ctx). It is safe to call
// more than once, and after Leave.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.endFeeds.Do(func() { close(s.done) })
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.closeErr = s.srv.Close()
		s.wg.Wait()
		s.handlers.Wait()
	})
	return s.closeErr
}

// track counts the requests h handles, for Close to wait for.
func (s *Server) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			w.Header().Set("Connection", "close")
			writeJSON(w, http.StatusServiceUnavailable, ErrorReply{"the server is closing"})
			return
		}
		s.handlers.Add(1)
		s.mu.Unlock()
		defer s.handlers.Done()
		h.ServeHTTP(w, r)
	})
}

// apiError is a refusal with an HTTP status and a reason.
type apiError struct {
	code   int
	reason string
}

func (e *apiError) Error() string { return e.reason }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// ErrorReply is the body of every error response.
type ErrorReply struct {
	Error string `json:"error"`
}

// handler is an endpoint that may fail; the failure becomes a JSON error.
type handler func(http.ResponseWriter, *http.Request) error

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	err := h(w, r)
	if err == nil {
		return
	}
	code := http.StatusInternalServerError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		code = ae.code
	case errors.Is(err, view.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrTooLarge):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, ErrorReply{strings.ReplaceAll(err.Error(), "\n", " ")})
}

// get serves GET (and HEAD) requests whose query holds only the named
// parameters, within the request timeout; other methods get 405.
func (s *Server) get(h handler, params ...string) http.Handler {
	return handler(func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			return &apiError{http.StatusMethodNotAllowed, r.Method + " is not allowed: the API is read-only"}
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return badRequest("query: %v", err)
		}
		for name := range q {
			if !slices.Contains(params, name) {
				return badRequest("unknown parameter %q", name)
			}
		}
		if r.URL.Path != "/v1/feed" {
			ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
			http.NewResponseController(w).SetWriteDeadline(time.Now().Add(requestTimeout))
		}
		return h(w, r)
	})
}

// withTimeout bounds a request to h by the request timeout.
func withTimeout(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(requestTimeout))
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
	return nil
}

// one returns the single value of a query parameter ("" when absent).
func one(r *http.Request, name string) (string, error) {
	vs := r.URL.Query()[name]
	if len(vs) > 1 {
		return "", badRequest("parameter %q given %d times", name, len(vs))
	}
	if len(vs) == 0 {
		return "", nil
	}
	return vs[0], nil
}

// number reads a non-negative integer parameter, def when absent.
func number(r *http.Request, name string, def, max uint64) (uint64, error) {
	v, err := one(r, name)
	if err != nil || v == "" {
		return def, err
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > max {
		return 0, badRequest("%s %q: want a whole number up to %d", name, v, max)
	}
	return n, nil
}

// boolean reads a parameter that is true or false (1 or 0), false when
// absent.
func boolean(r *http.Request, name string) (bool, error) {
	v, err := one(r, name)
	if err != nil || v == "" {
		return false, err
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("%s %q: want true or false", name, v)
	}
	return b, nil
}

// strParams reads string parameters into their destinations (in name
// order: the same bad request always gets the same reason).
func strParams(r *http.Request, dsts map[string]*string) error {
	for _, name := range slices.Sorted(maps.Keys(dsts)) {
		v, err := one(r, name)
		if err != nil {
			return err
		}
		*dsts[name] = v
	}
	return nil
}

// trackerOpt reads the optional tracker parameter into dst.
func trackerOpt(r *http.Request, dst *topics.TrackerID) error {
	t, err := one(r, "tracker")
	if err != nil || t == "" {
		return err
	}
	*dst, err = trackerParam(t)
	return err
}

func trackerParam(s string) (topics.TrackerID, error) {
	t, err := topics.ParseTrackerID(s)
	if err != nil {
		return t, badRequest("%v", err)
	}
	return t, nil
}

func (s *Server) things(w http.ResponseWriter, r *http.Request) error {
	var q view.ThingsQuery
	if err := strParams(r, map[string]*string{"author": &q.Author, "tag": &q.Tag, "text": &q.Text, "after": &q.After}); err != nil {
		return err
	}
	if err := trackerOpt(r, &q.Tracker); err != nil {
		return err
	}
	limit, err := number(r, "limit", 0, view.MaxThingsLimit)
	if err != nil {
		return err
	}
	q.Limit = int(limit)
	if q.Flagged, err = boolean(r, "flagged"); err != nil {
		return err
	}
	if err := q.Check(); err != nil {
		return badRequest("%v", err)
	}
	page, err := s.b.Things(r.Context(), q)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func (s *Server) thing(w http.ResponseWriter, r *http.Request) error {
	tracker, err := trackerParam(r.PathValue("tracker"))
	if err != nil {
		return err
	}
	id := r.PathValue("thing")
	if id == "" || len(id) > topics.MaxIDLen {
		return badRequest("thing id: 1 to %d bytes", topics.MaxIDLen)
	}
	v, err := s.b.Thing(r.Context(), tracker, id)
	// A Thing ID may hold slashes: THING/ancestry is the ancestry of THING
	// unless a Thing has that very ID.
	if base, ok := strings.CutSuffix(id, "/ancestry"); ok && errors.Is(err, view.ErrNotFound) && base != "" {
		a, err := s.b.Ancestry(r.Context(), tracker, base)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, a)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) trackers(w http.ResponseWriter, r *http.Request) error {
	var after *topics.TrackerID
	if a, err := one(r, "after"); err != nil {
		return err
	} else if a != "" {
		t, err := trackerParam(a)
		if err != nil {
			return err
		}
		after = &t
	}
	limit, err := number(r, "limit", defaultTrackersPage, maxTrackersPage)
	if err != nil {
		return err
	}
	if limit == 0 {
		return badRequest("limit: want 1 to %d", maxTrackersPage)
	}
	page, err := s.b.Trackers(r.Context(), after, int(limit))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func (s *Server) tracker(w http.ResponseWriter, r *http.Request) error {
	id, err := trackerParam(r.PathValue("id"))
	if err != nil {
		return err
	}
	doc, err := s.b.TrackerDocument(r.Context(), id)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(doc, '\n'))
	return nil
}

func (s *Server) nodes(w http.ResponseWriter, r *http.Request) error {
	v, err := s.b.Nodes(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) node(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := topics.NodeKey(id); err != nil {
		return badRequest("%v", err)
	}
	v, err := s.b.NodeDetail(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) discovered(w http.ResponseWriter, r *http.Request) error {
	v, err := s.b.Discovered(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	v, err := s.b.Health(r.Context())
	if err != nil {
		return &apiError{http.StatusServiceUnavailable, "unhealthy: " + err.Error()}
	}
	return writeJSON(w, http.StatusOK, v)
}

// errorLog passes promhttp's errors to the logger.
type errorLog struct{ s *Server }

func (e errorLog) Println(v ...any) { e.s.cfg.Logger.Warn("metrics: " + fmt.Sprint(v...)) }
