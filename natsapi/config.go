// Package natsapi runs the node's embedded NATS server: plugins, local
// programs in any language, receive every accepted announcement on
// ttn.ann.<tracker id>.<kind> and use the node through requests on
// ttn.api.* (publish, history, thing, things, status).
//
// It does not know the log or the network: the node hands it a Backend.
package natsapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/thingtracker/ttn/internal/hostport"
	"github.com/thingtracker/ttn/view"

	"github.com/thingtracker/ttn/topics"
)

// Subjects.
const (
	// AnnouncePrefix prefixes the subjects announcements go out on:
	// ttn.ann.<tracker id>.<kind>.
	AnnouncePrefix = "ttn.ann."
	// APIPrefix prefixes the request subjects: ttn.api.publish and so on.
	APIPrefix = "ttn.api."
)

// Headers of an announcement message. Its body is the payload JSON as
// signed.
const (
	HeaderID       = "Ttn-Id"       // announcement ID (hex)
	HeaderAuthor   = "Ttn-Author"   // author's node ID
	HeaderSeq      = "Ttn-Seq"      // seq in the author's chain on the tracker
	HeaderCursor   = "Ttn-Cursor"   // position in this node's log
	HeaderTrust    = "Ttn-Trust"    // the author's trust level on this node
	HeaderEnvelope = "Ttn-Envelope" // the signed envelope, standard base64
)

// Backend is what the API needs of the node. Its methods may be called
// concurrently.
type Backend interface {
	// Last returns the cursor of the log's last durable entry.
	Last() uint64
	// Wait blocks until the log has an entry after cursor, or ctx is done.
	Wait(ctx context.Context, cursor uint64) error
	// Entries returns up to limit entries after cursor, in log order.
	Entries(cursor uint64, limit int) ([]view.Entry, error)

	// Publish announces Things on one of the node's trackers, through its
	// one seq allocator. The result is encoded as JSON for the requester.
	Publish(ctx context.Context, tracker topics.TrackerID, things []topics.Thing) (*view.PublishResult, error)
	// Thing returns one Thing with its history, or an error wrapping
	// view.ErrNotFound.
	Thing(ctx context.Context, tracker topics.TrackerID, id string) (*view.Thing, error)
	// Things answers a checked Things query.
	Things(ctx context.Context, q view.ThingsQuery) (*view.ThingsPage, error)
	// Search answers a checked full-text search.
	Search(ctx context.Context, q view.SearchQuery) (*view.SearchResult, error)
	// Status describes the node.
	Status(ctx context.Context) (*view.Status, error)
	// NodeDetail tells everything the node holds about a node.
	NodeDetail(ctx context.Context, id string) (*view.NodeDetail, error)
	// Discovered lists the trackers discovered and not followed.
	Discovered(ctx context.Context) ([]view.Discovered, error)
}

// Config configures the embedded server. The zero value of each field means
// its default (see DefaultConfig).
type Config struct {
	// Addr is the HOST:PORT clients connect to. Empty means 127.0.0.1:4222,
	// "0" an ephemeral port on 127.0.0.1, port 0 an ephemeral port; "off"
	// means no client listener (the node still reaches leafnode remotes).
	Addr string
	// Token, if set, is required of every client (it cannot be combined with
	// users from ConfigFile). Token holders may publish through the node.
	// Empty means none: clients need no credentials, and may not publish.
	Token string
	// ConfigFile, if set, is a nats-server configuration file: users and
	// their permissions, leafnode remotes, limits. Its listen address is
	// ignored (Addr decides). Accounts, nkeys and operator mode are not
	// supported. Empty means none.
	ConfigFile string
	// Leaf are the URLs of a NATS cluster to join as a leafnode (nats://HOST:PORT,
	// with user:password@ or a token if the cluster needs them), besides any in
	// ConfigFile. Empty means none.
	Leaf []string
	// Logger receives the server's messages. Nil discards them.
	Logger *slog.Logger

	// PublishRate and PublishBurst bound the Things announced through
	// ttn.api.publish, per second and at once: 50 and 500 when zero. They
	// stay under what peers accept of one author (see gossip.Config).
	PublishRate  float64
	PublishBurst int
}

// DefaultConfig returns the configuration with every default filled in.
func DefaultConfig() Config {
	return Config{
		Addr:         "127.0.0.1:4222", // loopback: plugins run beside the node; NATS's usual port
		Logger:       slog.New(slog.DiscardHandler),
		PublishRate:  50,  // Things per second through ttn.api.publish
		PublishBurst: 500, // Things at once
	}
}

// Check reports every problem of the configuration at once.
func (c Config) Check() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults fills in the defaults and reports every problem at once.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	d := DefaultConfig()
	switch c.Addr {
	case "":
		c.Addr = d.Addr
	case "0":
		c.Addr = "127.0.0.1:0"
	}
	if c.Addr != "off" {
		if _, _, err := hostport.Split(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("natsapi: Addr %w", err))
		}
	}
	for _, l := range c.Leaf {
		if _, err := leafURL(l); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.PublishRate == 0 {
		c.PublishRate = d.PublishRate
	}
	if c.PublishBurst == 0 {
		c.PublishBurst = d.PublishBurst
	}
	if c.PublishRate < 0 || c.PublishBurst < 0 {
		errs = append(errs, errors.New("natsapi: PublishRate and PublishBurst must not be negative"))
	}
	return c, errors.Join(errs...)
}

func leafURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "nats-leaf") {
		return nil, fmt.Errorf("natsapi: leafnode remote %q: want nats://HOST:PORT", redact(s))
	}
	return u, nil
}

// redact hides the credentials of a URL in messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
