package gossip

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"

	"github.com/thingtracker/ttn/topics"
)

// DHTPrefix is the protocol prefix of the network's Kademlia DHT: a
// network of its own (/ttn/kad/1.0.0), not the IPFS one.
const DHTPrefix = "/ttn"

// maxAdvertising bounds the provider records being published at once: an
// indexer joining thousands of topics would otherwise start thousands of
// DHT walks together.
const maxAdvertising = 4

// newDHT starts the node's DHT on h: a server when the node is public, a
// client when private, and in auto mode a server unless AutoNAT finds the
// node private. It is bootstrapped from the bootstrap peers and, through
// the routing table's own refresh, from every peer it connects to (members
// included).
func (n *Node) newDHT(h host.Host) (routing.PeerRouting, error) {
	mode := dht.ModeAutoServer
	switch n.cfg.Reachability {
	case ReachPublic:
		mode = dht.ModeServer
	case ReachPrivate:
		mode = dht.ModeClient
	}
	d, err := dht.New(h,
		dht.ProtocolPrefix(DHTPrefix),
		dht.Mode(mode),
		// Not before the host listens: a connection dialled earlier (the DHT
		// starts inside libp2p.New) leaves from a port that is not the
		// listening one, so its peer's observation of this node's public
		// address is useless, and a node behind NAT cannot hole-punch.
		dht.BootstrapPeersFunc(func() []peer.AddrInfo {
			select {
			case <-n.reach.hostUp:
				return n.boot
			default:
				return nil
			}
		}),
		dht.DisableValues(), // provider records and peer routing only
	)
	if err != nil {
		return nil, fmt.Errorf("gossip: dht: %w", err)
	}
	n.dht = d
	return d, nil
}

// DHTPeers returns the size of the node's DHT routing table.
func (n *Node) DHTPeers() int {
	if n.dht == nil {
		return 0
	}
	return n.dht.RoutingTable().Size()
}

// topicDiscovery is GossipSub's discovery: a follower of tracker T
// advertises itself under the topic's name, ttn/tracker/<T>, as a provider
// record in the DHT, and GossipSub looks there for peers when a topic's
// mesh is short. pubsub prefixes namespaces with "floodsub:"; the records
// carry the topic name alone. The discovery topic is not advertised: every
// node is on it, and members and bootstrap peers suffice.
//
// GossipSub asks once a second for every topic whose mesh is short, and a
// tracker with fewer followers than the mesh wants is short for good: a
// topic's lookups are spaced, from lookupFirst doubling to lookupMax, and
// the spacing starts again once a topic has gone unasked that long.
type topicDiscovery struct {
	rd  discovery.Discovery
	sem chan struct{}
	now func() time.Time

	mu      sync.Mutex
	lookups map[string]*lookupPace
}

// lookupPace is when a topic may next be looked up, and the spacing.
type lookupPace struct {
	next time.Time
	gap  time.Duration
}

const (
	lookupFirst = 5 * time.Second
	lookupMax   = 10 * time.Minute
)

func newTopicDiscovery(r routing.ContentRouting) *topicDiscovery {
	return &topicDiscovery{rd: drouting.NewRoutingDiscovery(r), sem: make(chan struct{}, maxAdvertising),
		now: time.Now, lookups: make(map[string]*lookupPace)}
}

// due reports whether ns may be looked up now, and if so spaces the next.
func (d *topicDiscovery) due(ns string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	p := d.lookups[ns]
	switch {
	case p == nil || now.After(p.next.Add(p.gap)): // new, or unasked for a spell
		p = &lookupPace{gap: lookupFirst}
		d.lookups[ns] = p
	case now.Before(p.next):
		return false
	default:
		p.gap = min(2*p.gap, lookupMax)
	}
	p.next = now.Add(p.gap)
	return true
}

func trackerNamespace(ns string) (string, bool) {
	ns = strings.TrimPrefix(ns, "floodsub:")
	return ns, strings.HasPrefix(ns, topics.TrackerTopicPrefix)
}

// Advertise implements discovery.Advertiser. A failure is retried here,
// soon: pubsub would wait two minutes, and a topic joined at start is
// joined before the DHT has a peer to store the record.
func (d *topicDiscovery) Advertise(ctx context.Context, ns string, opts ...discovery.Option) (time.Duration, error) {
	ns, ok := trackerNamespace(ns)
	if !ok {
		return time.Hour, nil // asked again in an hour: nothing to do
	}
	for backoff := time.Second; ; backoff = min(2*backoff, maxAdvertiseBackoff) {
		ttl, err := d.advertise(ctx, ns, opts)
		if err == nil || ctx.Err() != nil {
			return ttl, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// maxAdvertiseBackoff bounds the wait between attempts to advertise.
const maxAdvertiseBackoff = 30 * time.Second

func (d *topicDiscovery) advertise(ctx context.Context, ns string, opts []discovery.Option) (time.Duration, error) {
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-d.sem }()
	return d.rd.Advertise(ctx, ns, opts...)
}

// FindPeers implements discovery.Discoverer.
func (d *topicDiscovery) FindPeers(ctx context.Context, ns string, opts ...discovery.Option) (<-chan peer.AddrInfo, error) {
	ns, ok := trackerNamespace(ns)
	if !ok || !d.due(ns) {
		c := make(chan peer.AddrInfo)
		close(c)
		return c, nil
	}
	return d.rd.FindPeers(ctx, ns, opts...)
}

// FindNode connects to a node that is not a member, found by its ID in the
// DHT (peer routing), unless the node is connected to it already.
func (n *Node) FindNode(ctx context.Context, id string) error {
	p, err := decodeNodeID(id)
	if err != nil {
		return err
	}
	if p == n.host.ID() || n.host.Network().Connectedness(p) == network.Connected {
		return nil
	}
	if err := n.host.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
		return fmt.Errorf("gossip: find node %s: %w", id, err)
	}
	return nil
}
