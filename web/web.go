// Package web serves the pages a maker looks at, on the node's HTTP
// listener: the live feed (/), trackers, Things with their versions, edits
// and ancestry, nodes with their trust, search, the discovered trackers to
// review, and the node's status. Pages are rendered on the server from
// html/template with go:embed'ed assets: no external requests, no build
// step, and every page works without JavaScript (the feed's live updates
// use it, over the SSE feed).
//
// Forms that act on the node (follow, publish, trust, flag, block,
// dismiss) are served only when the listener is loopback (Config.Actions);
// then every request must name a loopback host (no DNS rebinding) and
// cross-origin form posts are refused (net/http's CrossOriginProtection).
//
// It does not know the log or the network: the node hands it a Backend.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// Backend is what the pages need of the node. Its methods may be called
// concurrently.
type Backend interface {
	// Last returns the cursor of the log's last entry; Entries returns up
	// to limit entries after cursor, in log order.
	Last() uint64
	Entries(cursor uint64, limit int) ([]view.Entry, error)

	Things(ctx context.Context, q view.ThingsQuery) (*view.ThingsPage, error)
	Thing(ctx context.Context, tracker topics.TrackerID, id string) (*view.Thing, error)
	Ancestry(ctx context.Context, tracker topics.TrackerID, id string) (*view.Ancestry, error)
	Trackers(ctx context.Context, after *topics.TrackerID, limit int) (*view.TrackersPage, error)
	// Tracker describes one tracker, or returns an error wrapping
	// view.ErrNotFound.
	Tracker(ctx context.Context, id topics.TrackerID) (*Tracker, error)
	NodeDetail(ctx context.Context, id string) (*view.NodeDetail, error)
	Discovered(ctx context.Context) ([]view.Discovered, error)
	Status(ctx context.Context) (*view.Status, error)

	// What the forms do (only on a loopback listener).
	Follow(ctx context.Context, fs view.FollowSet) error
	Unfollow(ctx context.Context, fs view.FollowSet) error
	Publish(ctx context.Context, tracker topics.TrackerID, things []topics.Thing) (*view.PublishResult, error)
	Trust(ctx context.Context, subject string, level topics.TrustLevel, fingerprint, note string) error
	Flag(ctx context.Context, f topics.Flag) error
	Block(ctx context.Context, ids []string, blocked bool) error
	Dismiss(ctx context.Context, ids []string) error
}

// Searcher answers the search page; nil in Config means the node keeps no
// index and the page says so.
type Searcher interface {
	Search(ctx context.Context, q view.SearchQuery) (*view.SearchResult, error)
}

// Tracker is what the tracker page shows of a tracker.
type Tracker struct {
	view.Tracker
	Info     *topics.TrackerInfo // nil for a node tracker, or before its tracker record arrives
	Followed bool                // the node follows it (or owns it)
	Own      bool                // the node owns it
}

// Config configures the pages.
type Config struct {
	// Actions serves the forms that act on the node. Turn it on only for a
	// loopback listener: then requests must name a loopback host.
	Actions bool
	// Search answers the search page; nil when the node keeps no index.
	Search Searcher
	// Logger receives failures of the backend. Nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration with every default filled in:
// read-only pages, no search.
func DefaultConfig() Config {
	return Config{Logger: slog.New(slog.DiscardHandler)}
}

// Pages serves the pages. It is an http.Handler.
type Pages struct {
	cfg Config
	b   Backend
	mux *http.ServeMux
}

// New returns the pages of b.
func New(cfg Config, b Backend) *Pages {
	if cfg.Logger == nil {
		cfg.Logger = DefaultConfig().Logger
	}
	p := &Pages{cfg: cfg, b: b, mux: http.NewServeMux()}
	page := func(pattern string, h handler) { p.mux.Handle("GET "+pattern, p.render(h)) }
	page("/{$}", p.feed)
	page("/trackers", p.trackers)
	page("/trackers/{id}", p.tracker)
	page("/things/{tracker}/{thing...}", p.thing)
	page("/nodes/{id}", p.node)
	page("/search", p.search)
	page("/discovered", p.discovered)
	page("/status", p.status)
	page("/publish", p.publishForm)
	p.mux.Handle("GET /assets/", http.StripPrefix("/assets/", assetServer))
	csrf := http.NewCrossOriginProtection()
	for name, h := range map[string]action{
		"follow": p.follow, "unfollow": p.unfollow, "publish": p.publish, "trust": p.trust,
		"flag": p.flag, "block": p.block, "dismiss": p.dismiss,
	} {
		p.mux.Handle("POST /act/"+name, csrf.Handler(p.act(h)))
	}
	p.mux.Handle("/", p.render(func(*http.Request) (string, any, error) {
		return "", nil, notFound("no such page")
	}))
	return p
}

// ServeHTTP serves a page, after the host check when forms are served.
func (p *Pages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.cfg.Actions && !LoopbackHost(r.Host) {
		// A page that acts on the node answers only to a loopback name: a
		// DNS name rebound to 127.0.0.1 must not reach its forms.
		http.Error(w, "this node's pages answer only to a loopback host (localhost, 127.0.0.1, [::1])", http.StatusMisdirectedRequest)
		return
	}
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	p.mux.ServeHTTP(w, r)
}

// LoopbackHost reports whether a Host header names this machine's loopback:
// localhost, or a loopback IP, with or without a port.
func LoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// pageError is a failure with the status it answers.
type pageError struct {
	code   int
	reason string
}

func (e *pageError) Error() string { return e.reason }

func notFound(reason string) error   { return &pageError{http.StatusNotFound, reason} }
func badRequest(reason string) error { return &pageError{http.StatusBadRequest, reason} }

// status is the HTTP status an error answers.
func status(err error) int {
	var pe *pageError
	switch {
	case errors.As(err, &pe):
		return pe.code
	case errors.Is(err, view.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}
