package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/thingtracker/ttn/internal/hostport"

	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/thingtracker/ttn/topics"
)

// Store is what the mesh needs of the node's log. Its methods may be called
// concurrently from many validation goroutines; they must not block on the
// network. *feed.Log satisfies it through the node package.
type Store interface {
	// Has reports whether an announcement is stored already.
	Has(id topics.ID) (bool, error)
	// Append stores a validated announcement durably and says whether to
	// forward it: Accept for a new entry, Ignore for a duplicate, an old or
	// forked entry, or one over a chain's limits.
	Append(ctx context.Context, a *topics.Announcement) (topics.Outcome, error)
}

// Config configures a Node. The zero value of each field means its default
// (see DefaultConfig), except Key and Store, which are required.
type Config struct {
	// Key is the node's identity: its libp2p key and the name it has in
	// memberlist. Required; Ed25519.
	Key crypto.PrivKey
	// Store keeps what the node accepts. Required.
	Store Store
	// History, if set, serves the sync protocol and lets the node fetch
	// history from its peers. Nil means no sync.
	History History
	// Logger receives the node's messages, and memberlist's. Nil discards.
	Logger *slog.Logger

	// Listen are the libp2p listen multiaddrs. Empty means TCP and QUIC on
	// port 7601 of every interface (TCP only with a PSK); a port of 0 means
	// an ephemeral port.
	Listen []string
	// GossipAddr is memberlist's HOST:PORT. Empty means 0.0.0.0:7946;
	// port 0 means an ephemeral port; "off" disables membership (the node
	// then connects only to Bootstrap peers).
	GossipAddr string
	// Join are memberlist HOST:PORT addresses to join at start. Empty means
	// none.
	Join []string
	// Keyring holds memberlist encryption keys (16, 24 or 32 bytes each;
	// the first is used to encrypt). Empty means no encryption: anyone who
	// reaches the gossip port can join.
	Keyring [][]byte
	// Peers keeps the gossip addresses of known members, to rejoin them
	// after a restart. Nil means none are kept.
	Peers PeerStore
	// Bootstrap are libp2p peers (multiaddrs with /p2p/ID) to connect to
	// directly, besides members. Empty means none.
	Bootstrap []string

	// Reachability is ReachAuto, ReachPublic or ReachPrivate (see each).
	// Empty means ReachAuto.
	Reachability string
	// NoRelayService stops a public node offering circuit relay v2 to
	// private ones (by default it does, within libp2p's relay limits).
	NoRelayService bool
	// NoNATPortMap stops the node asking its router for a port mapping
	// (UPnP, NAT-PMP). A node listening on loopback only never asks.
	NoNATPortMap bool
	// NoDHT turns the DHT off: peers come only from members and bootstrap
	// peers, and a topic's mesh is whatever they bring. Tests of a fixed
	// topology use it.
	NoDHT bool
	// PSK, if set, makes the libp2p network private: only nodes holding the
	// same 32-byte key can connect. libp2p's private networks cover TCP
	// only, so QUIC is off. Nil means an open network.
	PSK []byte

	// MaxPeers bounds the node's libp2p connections: past it the connection
	// manager trims, keeping mesh peers of followed topics, bootstrap peers
	// and the owners of followed trackers. Zero means 64.
	MaxPeers int
	// MaxTrackers bounds the tracker topics the node joins. Zero means
	// 10,000; at most MaxTrackersLimit.
	MaxTrackers int
	// MaxPeerTopics bounds the topics one remote peer may subscribe to.
	// Zero means MaxTrackers + 1.
	MaxPeerTopics int

	// AuthorRate and AuthorBurst are each author's budget of announcements
	// per second, sustained and at once, counted as they arrive from the
	// network (not from sync). Beyond it an author's announcements are
	// ignored: not stored, not forwarded. Zero means 100 and 2000.
	AuthorRate  float64
	AuthorBurst int
	// Standing, if set, says how the node treats an author's announcements
	// and discovery records: ignored, or within a budget of its own instead
	// of AuthorRate and AuthorBurst. It is given the author's raw 32-byte
	// Ed25519 key (topics.Envelope.RawKey) and asked again for every
	// message, so a change applies to the next one. It is called
	// concurrently from the validation and sync goroutines, before any
	// signature is verified, for every message that arrives: it must be
	// cheap (a map lookup) and must not block. Nil treats every author
	// alike, with the defaults.
	Standing func(author [32]byte) Standing
	// SeenTTL is how long GossipSub remembers a message ID. Zero means two
	// minutes, GossipSub's own default. Tests shrink it.
	SeenTTL time.Duration

	// OnProgress, if set, is told how a fetch is going after each batch
	// stored (on the fetching goroutine; it must not block). Nil means
	// nobody is told.
	OnProgress func(topics.TrackerID, FetchResult)

	// OnDiscovery, if set, is called (on its own goroutine, one call at a
	// time) with every valid discovery record accepted from the network.
	// Nil means they are only counted.
	OnDiscovery func(topics.Discovery)

	// Heartbeat is GossipSub's heartbeat. Zero means one second. Tests
	// shrink it.
	Heartbeat time.Duration
	// ProbeInterval is memberlist's failure-detection interval. Zero means
	// one second.
	ProbeInterval time.Duration
	// Now is the clock for validation. Nil means time.Now.
	Now func() time.Time

	allowHugeHello bool // the topic-scale benchmark goes past MaxTrackersLimit
}

// Standing is how this node treats an author's announcements.
type Standing struct {
	// Ignore drops the author's messages: blocked or distrusted, they are
	// not stored, not forwarded, not fetched or served in sync. They are
	// ignored, not rejected: a peer relaying them does nothing wrong.
	Ignore bool
	// Rate is the author's budget of announcements per second, sustained.
	// Zero (or less) means Config.AuthorRate.
	Rate float64
	// Burst is the author's budget of announcements at once. Zero (or less)
	// means Config.AuthorBurst.
	Burst int
}

// MaxTrackersLimit bounds Config.MaxTrackers. GossipSub sends all of a
// node's subscriptions in one hello RPC, and pubsub counts subscriptions
// against its 512 KiB control-message limit (not only its 1 MiB message
// limit): at about 44 bytes a tracker topic, a hello past 11,900 topics is
// dropped by every peer, silently (measured: BenchmarkTopicScale greets a
// peer at 10,000 topics and never at 12,000). The limit leaves a 15% margin.
const MaxTrackersLimit = 10000

// DefaultConfig returns the configuration with every default filled in.
// Key and Store, which have none, are left for the caller.
func DefaultConfig() Config {
	return Config{
		Logger:        slog.New(slog.DiscardHandler),
		Listen:        []string{"/ip4/0.0.0.0/tcp/7601", "/ip4/0.0.0.0/udp/7601/quic-v1"}, // every interface
		Reachability:  ReachAuto,
		GossipAddr:    "0.0.0.0:7946",       // memberlist's usual port
		MaxPeers:      64,                   // connections dialled to members
		MaxTrackers:   MaxTrackersLimit,     // as many topics as a hello can carry
		MaxPeerTopics: MaxTrackersLimit + 1, // a peer's trackers and the discovery topic
		AuthorRate:    100,                  // announcements per second per author, sustained
		AuthorBurst:   2000,                 // and at once: a publisher's backlog
		SeenTTL:       2 * time.Minute,      // GossipSub's default
		Heartbeat:     time.Second,          // GossipSub's default
		ProbeInterval: time.Second,          // memberlist's LAN default
		Now:           time.Now,
	}
}

// withDefaults fills in the defaults and reports every problem at once.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	var errs []error
	if c.Key == nil {
		errs = append(errs, errors.New("gossip: Config.Key is required"))
	} else if c.Key.Type() != crypto.Ed25519 {
		errs = append(errs, errors.New("gossip: Config.Key must be Ed25519"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("gossip: Config.Store is required"))
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if len(c.Listen) == 0 {
		c.Listen = d.Listen
		if len(c.PSK) > 0 {
			c.Listen = d.Listen[:1]
		}
	}
	for _, a := range c.Listen {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("gossip: listen address %q: %v", a, err))
		} else if _, err := m.ValueForProtocol(ma.P_QUIC_V1); err == nil && len(c.PSK) > 0 {
			errs = append(errs, fmt.Errorf("gossip: listen address %q: a private network (PSK) covers TCP only; drop the QUIC address", a))
		}
	}
	if n := len(c.PSK); n != 0 && n != 32 {
		errs = append(errs, fmt.Errorf("gossip: PSK is %d bytes; want 32", n))
	}
	switch c.Reachability {
	case "":
		c.Reachability = d.Reachability
	case ReachAuto, ReachPublic, ReachPrivate:
	default:
		errs = append(errs, fmt.Errorf("gossip: reachability %q: want auto, public or private", c.Reachability))
	}
	if c.GossipAddr == "" {
		c.GossipAddr = d.GossipAddr
	}
	if c.GossipAddr != "off" {
		if _, _, err := splitHostPort(c.GossipAddr); err != nil {
			errs = append(errs, fmt.Errorf("gossip: gossip address: %v", err))
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			errs = append(errs, fmt.Errorf("gossip: join address %q: want HOST:PORT", j))
		}
	}
	for i, k := range c.Keyring {
		if n := len(k); n != 16 && n != 24 && n != 32 {
			errs = append(errs, fmt.Errorf("gossip: keyring key %d is %d bytes; want 16, 24 or 32", i+1, n))
		}
	}
	if c.MaxPeers == 0 {
		c.MaxPeers = d.MaxPeers
	}
	if c.MaxTrackers == 0 {
		c.MaxTrackers = d.MaxTrackers
	}
	if c.MaxPeerTopics == 0 {
		c.MaxPeerTopics = c.MaxTrackers + 1
	}
	if c.MaxTrackers > MaxTrackersLimit && !c.allowHugeHello {
		errs = append(errs, fmt.Errorf("gossip: MaxTrackers %d is over %d: the subscription hello GossipSub sends a new peer would exceed pubsub's 512 KiB control limit, and peers would silently miss every subscription", c.MaxTrackers, MaxTrackersLimit))
	}
	if c.MaxPeers < 1 || c.MaxTrackers < 1 || c.MaxPeerTopics < 1 {
		errs = append(errs, errors.New("gossip: MaxPeers, MaxTrackers and MaxPeerTopics must be positive"))
	}
	if c.AuthorRate == 0 {
		c.AuthorRate = d.AuthorRate
	}
	if c.AuthorBurst == 0 {
		c.AuthorBurst = d.AuthorBurst
	}
	if c.AuthorRate < 0 || c.AuthorBurst < 0 {
		errs = append(errs, errors.New("gossip: AuthorRate and AuthorBurst must not be negative"))
	}
	if c.SeenTTL == 0 {
		c.SeenTTL = d.SeenTTL
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = d.Heartbeat
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = d.ProbeInterval
	}
	if c.SeenTTL < 0 || c.Heartbeat < 0 || c.ProbeInterval < 0 {
		errs = append(errs, errors.New("gossip: SeenTTL, Heartbeat and ProbeInterval must not be negative"))
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	return c, errors.Join(errs...)
}

// splitHostPort is hostport.Split, for an IP address only.
func splitHostPort(hp string) (string, int, error) {
	host, port, err := hostport.Split(hp)
	if err == nil && net.ParseIP(host) == nil {
		err = fmt.Errorf("%q: want an IP address", hp)
	}
	return host, port, err
}

// PeerStore keeps the gossip addresses (HOST:PORT) of members last seen
// alive, across restarts. The node calls it from one goroutine at a time;
// SavePeers must be durable when it returns.
type PeerStore interface {
	LoadPeers() ([]string, error)
	SavePeers(addrs []string) error
}
