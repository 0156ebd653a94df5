// Package httpapi serves a node over HTTP: read-only REST in TTN's shapes
// (/v1/things, /v1/search, /v1/trackers, a tracker as a TTN tracker
// document, /v1/nodes), a live feed as Server-Sent Events (/v1/feed),
// Prometheus metrics (/metrics) and /healthz; every other path goes to
// the pages it is given (Config.Pages, package web). Errors are JSON:
// {"error":"reason"}.
//
// It does not know the log or the network: the node hands it a Backend.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/thingtracker/ttn/internal/hostport"
	"github.com/thingtracker/ttn/view"

	"github.com/thingtracker/ttn/topics"
)

// ErrTooLarge is what a Backend returns, wrapped, for an answer over the
// bounds of one request.
var ErrTooLarge = errors.New("httpapi: too large")

// Backend is what the API needs of the node. Its methods may be called
// concurrently.
type Backend interface {
	// Last returns the cursor of the log's last durable entry.
	Last() uint64
	// Wait blocks until the log has an entry after cursor, or ctx is done.
	Wait(ctx context.Context, cursor uint64) error
	// Entries returns up to limit entries after cursor, in log order.
	Entries(cursor uint64, limit int) ([]view.Entry, error)

	// Things answers a checked Things query.
	Things(ctx context.Context, q view.ThingsQuery) (*view.ThingsPage, error)
	// Search answers a checked full-text search.
	Search(ctx context.Context, q view.SearchQuery) (*view.SearchResult, error)
	// Thing returns one Thing with its history, or an error wrapping
	// view.ErrNotFound.
	Thing(ctx context.Context, tracker topics.TrackerID, id string) (*view.Thing, error)
	// Ancestry returns what a Thing derives from and what derives from it,
	// or an error wrapping view.ErrNotFound.
	Ancestry(ctx context.Context, tracker topics.TrackerID, id string) (*view.Ancestry, error)
	// Trackers returns a page of up to limit trackers after the tracker
	// after (from the first when nil), with their chains' heads.
	Trackers(ctx context.Context, after *topics.TrackerID, limit int) (*view.TrackersPage, error)
	// TrackerDocument returns a tracker as a TTN tracker document, or an
	// error wrapping view.ErrNotFound or ErrTooLarge.
	TrackerDocument(ctx context.Context, id topics.TrackerID) ([]byte, error)
	// Nodes describes this node, its members and its peers.
	Nodes(ctx context.Context) (*view.Nodes, error)
	// NodeDetail tells everything the node holds about a node: profile,
	// fingerprint, trust level and why, trackers, follows, trust records
	// and flags.
	NodeDetail(ctx context.Context, id string) (*view.NodeDetail, error)
	// Discovered lists the trackers discovered and not followed, for
	// review.
	Discovered(ctx context.Context) ([]view.Discovered, error)
	// Health describes the node in a few words; an error means unhealthy.
	Health(ctx context.Context) (*view.Health, error)
	// Metrics returns the node's counters for /metrics.
	Metrics(ctx context.Context) (*Metrics, error)
}

// Config configures the server. The zero value of each field means its
// default (see DefaultConfig).
type Config struct {
	// Addr is the HOST:PORT to listen on. Empty means 127.0.0.1:7070, "0"
	// an ephemeral port on 127.0.0.1, port 0 an ephemeral port.
	Addr string
	// Logger receives the server's messages. Nil discards them.
	Logger *slog.Logger
	// MaxFeeds bounds the /v1/feed clients served at once. Zero means 64.
	MaxFeeds int
	// KeepAlive is how long a feed may stay silent before a comment goes
	// out (zero means 15 s); WriteTimeout how long a feed client may go
	// without reading before it is dropped (zero means 30 s).
	KeepAlive, WriteTimeout time.Duration
	// Pages serves every path outside /v1/, /metrics and /healthz (the
	// pages people look at, package web); nil answers them 404.
	Pages http.Handler
}

// DefaultConfig returns the configuration with every default filled in.
func DefaultConfig() Config {
	return Config{
		Addr:         "127.0.0.1:7070", // loopback: put a proxy in front to publish it
		Logger:       slog.New(slog.DiscardHandler),
		MaxFeeds:     64,               // SSE clients at once, a goroutine and a batch each
		KeepAlive:    15 * time.Second, // under the usual proxy idle timeouts (30–60 s)
		WriteTimeout: 30 * time.Second, // a feed client that stops reading is dropped
	}
}

// withDefaults fills in the defaults and reports every problem at once.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	var errs []error
	switch c.Addr {
	case "":
		c.Addr = d.Addr
	case "0":
		c.Addr = "127.0.0.1:0"
	}
	if _, _, err := hostport.Split(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("httpapi: Addr %w", err))
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.MaxFeeds == 0 {
		c.MaxFeeds = d.MaxFeeds
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = d.KeepAlive
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.MaxFeeds < 0 || c.KeepAlive < 0 || c.WriteTimeout < 0 {
		errs = append(errs, errors.New("httpapi: MaxFeeds, KeepAlive and WriteTimeout must not be negative"))
	}
	return c, errors.Join(errs...)
}

// Check reports every problem of the configuration at once.
func (c Config) Check() error {
	_, err := c.withDefaults()
	return err
}
