package gossip

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/thingtracker/ttn/topics"
)

// Errors.
var (
	ErrClosed      = errors.New("gossip: node closed")
	ErrTooManyJoin = errors.New("gossip: tracker limit reached")
	ErrBadNodeID   = errors.New("gossip: not a node ID")
)

// Queue sizes, chosen rather than left at pubsub's defaults: a default
// outbound queue of 32 RPCs drops messages under bursts (a publisher's
// backlog after a restart), and a validation queue of 32 drops them before
// they are even checked. Every drop is counted (see Stats).
const (
	outboundQueue   = 1024 // RPCs queued per peer
	validationQueue = 4096 // messages waiting for a validation slot
	discoveryBuffer = 4096 // discovery records waiting for OnDiscovery
	validateTimeout = 30 * time.Second
)

// Node is a running network node. Its methods may be called concurrently.
type Node struct {
	cfg   Config
	host  host.Host
	ps    *pubsub.PubSub
	mem   *members
	dht   *dht.IpfsDHT
	boot  []peer.AddrInfo // bootstrap peers
	reach reach
	filt  *subFilter
	mesh  *meshes
	sync  *syncer // nil without History
	stat  counters

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	discTopic *pubsub.Topic
	discRelay pubsub.RelayCancelFunc
	discQ     chan topics.Discovery
	discGate  *discoveryGate
	budgets   *authorBudgets

	mu     sync.Mutex
	closed bool
	joined map[topics.TrackerID]*joined
	owners map[string]int // followed trackers by owner (ownerKey)

	scoreMu sync.Mutex
	scores  map[peer.ID]float64
}

type joined struct {
	topic *pubsub.Topic
	relay pubsub.RelayCancelFunc
}

// New starts a node: the libp2p host, GossipSub, the discovery topic, and
// memberlist, joining cfg.Join and the peers remembered in cfg.Peers.
// It blocks until one of them has answered or all have failed, or until ctx
// is done: then it stops what it started and returns ctx's error. A failure
// to join is logged, not fatal: the node runs alone until peers find it.
// ctx bounds the start only; the node runs until Leave or Close.
func New(ctx context.Context, cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	n := &Node{
		cfg:      cfg,
		joined:   make(map[topics.TrackerID]*joined),
		owners:   make(map[string]int),
		discQ:    make(chan topics.Discovery, discoveryBuffer),
		discGate: newDiscoveryGate(),
		budgets:  newAuthorBudgets(),
		scores:   make(map[peer.ID]float64),
		mesh:     &meshes{m: make(map[string]map[peer.ID]struct{})},
		reach:    reach{hostUp: make(chan struct{})},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.start(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) start(ctx context.Context) error {
	var boot []ma.Multiaddr
	for _, b := range n.cfg.Bootstrap {
		a, err := ma.NewMultiaddr(b)
		if err == nil {
			_, err = peer.AddrInfoFromP2pAddr(a)
		}
		if err != nil {
			return fmt.Errorf("gossip: bootstrap peer %q: %w", b, err)
		}
		boot = append(boot, a)
	}
	// One entry per peer, with all its addresses: libp2p then dials them
	// together, QUIC first.
	var err error
	if n.boot, err = peer.AddrInfosFromP2pAddrs(boot...); err != nil {
		return fmt.Errorf("gossip: bootstrap peers: %w", err)
	}
	cm, err := connmgr.NewConnManager(n.cfg.MaxPeers*3/4, n.cfg.MaxPeers, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return err
	}
	hostOpts := n.hostOptions()
	admission, err := admissionOptions()
	if err != nil {
		return err
	}
	hostOpts = append(hostOpts,
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionManager(boundedConns{cm}),
	)
	if !n.cfg.NoDHT {
		hostOpts = append(hostOpts, libp2p.Routing(n.newDHT))
	}
	n.host, err = libp2p.New(append(hostOpts, admission...)...)
	if err != nil {
		return fmt.Errorf("gossip: libp2p host: %w", err)
	}
	close(n.reach.hostUp)
	if err := n.watchReachability(); err != nil {
		return err
	}
	n.wg.Add(1)
	go n.retryPunches()
	n.filt = newSubFilter(n.cfg.MaxPeerTopics, &n.stat.dropSub)
	n.host.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) { n.protectOwner(c.RemotePeer()) },
		DisconnectedF: func(_ network.Network, c network.Conn) {
			if len(n.host.Network().ConnsToPeer(c.RemotePeer())) == 0 {
				n.filt.forget(c.RemotePeer())
			}
		},
	})

	appScore := func(peer.ID) float64 { return 0 }
	if n.cfg.History != nil {
		n.sync = newSyncer(n, n.cfg.History)
		appScore = n.sync.appScore
		n.host.SetStreamHandler(SyncProtocol, n.sync.serve)
	}

	opts := append(routerOptions(n.cfg.Heartbeat, appScore),
		pubsub.WithPeerScoreInspect(n.inspectScores, time.Second),
		pubsub.WithSubscriptionFilter(n.filt),
		pubsub.WithRawTracer(tracer{c: &n.stat, mesh: n.mesh}),
		pubsub.WithLogger(slog.New(quietHandler{n.cfg.Logger.Handler()}).With("component", "pubsub")),
		pubsub.WithSeenMessagesTTL(n.cfg.SeenTTL),
	)
	if n.dht != nil {
		opts = append(opts, pubsub.WithDiscovery(newTopicDiscovery(n.dht)))
	}
	n.ps, err = pubsub.NewGossipSub(n.ctx, n.host, opts...)
	if err != nil {
		return fmt.Errorf("gossip: pubsub: %w", err)
	}
	if err := n.joinDiscovery(); err != nil {
		return err
	}
	n.wg.Add(1)
	go n.dispatchDiscoveries()

	for _, ai := range n.boot {
		n.host.ConnManager().Protect(ai.ID, "bootstrap") // never trimmed
	}
	if len(n.boot) > 0 {
		n.wg.Add(1)
		go n.bootstrap(n.boot)
	}
	if len(n.cfg.Keyring) > 0 && len(n.cfg.PSK) == 0 {
		n.cfg.Logger.Warn("memberlist is encrypted (keyring) but libp2p is open: any node that reaches the libp2p port can connect; give a PSK to close it too")
	}
	if n.cfg.GossipAddr == "off" {
		return nil
	}
	if n.cfg.Reachability == ReachPrivate {
		n.cfg.Logger.Info("private node: no memberlist (members would probe it as dead); peers come from bootstrap peers and the DHT")
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gossip: %w", err)
	}
	n.mem = newMembers(n)
	return n.mem.start(ctx)
}

// bootstrap connects to the Bootstrap peers, all at once, and again
// whenever a connection has dropped (looked at every reconnectEvery),
// until the node stops: with membership off they are its only peers.
func (n *Node) bootstrap(peers []peer.AddrInfo) {
	defer n.wg.Done()
	t := time.NewTicker(reconnectEvery)
	defer t.Stop()
	for round := 0; ; round++ {
		var wg sync.WaitGroup
		for _, ai := range peers {
			if n.host.Network().Connectedness(ai.ID) == network.Connected {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(n.ctx, dialTimeout)
				defer cancel()
				if err := n.host.Connect(ctx, ai); err != nil && n.ctx.Err() == nil {
					level := slog.LevelDebug
					if round == 0 {
						level = slog.LevelWarn
					}
					n.cfg.Logger.Log(n.ctx, level, "bootstrap peer unreachable", "peer", ai.ID.String(), "err", err)
				}
			}()
		}
		wg.Wait()
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// routerOptions are our GossipSub settings (the propagation benchmark runs
// them on mocknet): heartbeat, no pubsub signatures, message ID = SHA-256
// of the data, flood publishing, peer scoring, queue sizes.
func routerOptions(heartbeat time.Duration, appScore func(peer.ID) float64, colocated ...*net.IPNet) []pubsub.Option {
	params := pubsub.DefaultGossipSubParams()
	params.HeartbeatInterval = heartbeat
	params.HeartbeatInitialDelay = min(100*time.Millisecond, heartbeat)
	// Meshes near D: the default Dhi of 12 lets meshes grow to twice D, and
	// every mesh peer is a copy of every message (the propagation
	// benchmark: 6.8 copies per delivery with 12, 5.0 with 8, at the same
	// latency).
	params.Dhi = 8
	// IDONTWANT for anything but tiny messages: a peer that has a message
	// tells its mesh not to send it again. Announcements are about 1 KB, at
	// the default 1 KB threshold.
	params.IDontWantMessageThreshold = 256
	return []pubsub.Option{
		pubsub.WithGossipSubParams(params),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(messageID),
		// Our own announcements go to every peer on the topic, not only the
		// mesh: they arrive at once, even before the mesh forms (a node
		// announcing its offline backlog at start), and each author pays
		// for its own messages. Relayed ones follow the mesh.
		pubsub.WithFloodPublish(true),
		pubsub.WithPeerScore(peerScoreParams(appScore, colocated...), peerScoreThresholds()),
		pubsub.WithPeerOutboundQueueSize(outboundQueue),
		pubsub.WithValidateQueueSize(validationQueue),
	}
}

// messageID is a message's ID: the raw SHA-256 of its data, which for an
// announcement is its announcement ID.
func messageID(m *pb.Message) string {
	h := sha256.Sum256(m.Data)
	return string(h[:])
}

// ID returns the node's ID (its libp2p peer ID, in base58).
func (n *Node) ID() string { return n.host.ID().String() }

// Addrs returns the node's libp2p listen addresses, with its peer ID.
func (n *Node) Addrs() []string {
	var out []string
	for _, a := range n.host.Addrs() {
		out = append(out, a.String()+"/p2p/"+n.host.ID().String())
	}
	return out
}

// GossipAddr returns memberlist's bound HOST:PORT, or "" when off.
func (n *Node) GossipAddr() string {
	if n.mem == nil {
		return ""
	}
	return n.mem.addr()
}

// Follow joins a tracker's topic: the node then receives, validates, stores
// and relays its announcements. Following a tracker twice is harmless.
func (n *Node) Follow(t topics.TrackerID) error {
	first, err := n.join(t)
	if first {
		n.protectOwners(trackerOwner(t), true)
	}
	return err
}

// join joins t's topic and says whether t is the first followed tracker of
// its owner.
func (n *Node) join(t topics.TrackerID) (first bool, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false, ErrClosed
	}
	if _, ok := n.joined[t]; ok {
		return false, nil
	}
	if len(n.joined) >= n.cfg.MaxTrackers {
		n.stat.refused.Add(1)
		return false, fmt.Errorf("%w: following %d trackers (--max-trackers)", ErrTooManyJoin, len(n.joined))
	}
	name := topics.TrackerTopic(t)
	if err := n.ps.RegisterTopicValidator(name, n.validate, pubsub.WithValidatorTimeout(validateTimeout)); err != nil {
		return false, fmt.Errorf("gossip: follow %s: %w", t, err)
	}
	topic, err := n.ps.Join(name)
	if err != nil {
		n.ps.UnregisterTopicValidator(name)
		return false, fmt.Errorf("gossip: follow %s: %w", t, err)
	}
	if err := topic.SetScoreParams(topicScoreParams(1, n.cfg.Heartbeat)); err != nil {
		topic.Close()
		n.ps.UnregisterTopicValidator(name)
		return false, fmt.Errorf("gossip: follow %s: %w", t, err)
	}
	relay, err := topic.Relay()
	if err != nil {
		topic.Close()
		n.ps.UnregisterTopicValidator(name)
		return false, fmt.Errorf("gossip: follow %s: %w", t, err)
	}
	n.joined[t] = &joined{topic: topic, relay: relay}
	n.owners[trackerOwner(t)]++
	return n.owners[trackerOwner(t)] == 1, nil
}

// Unfollow leaves a tracker's topic.
func (n *Node) Unfollow(t topics.TrackerID) error {
	n.mu.Lock()
	j, ok := n.joined[t]
	if !ok {
		n.mu.Unlock()
		return nil
	}
	delete(n.joined, t)
	owner := trackerOwner(t)
	n.owners[owner]--
	last := n.owners[owner] == 0
	if last {
		delete(n.owners, owner)
	}
	j.relay()
	err := j.topic.Close()
	n.ps.UnregisterTopicValidator(topics.TrackerTopic(t))
	n.mu.Unlock()
	if last {
		n.protectOwners(owner, false)
	}
	return err
}

// Following returns the trackers whose topics the node has joined.
func (n *Node) Following() []topics.TrackerID {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]topics.TrackerID, 0, len(n.joined))
	for t := range n.joined {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b topics.TrackerID) int { return slices.Compare(a[:], b[:]) })
	return out
}

// MeshPeers returns how many peers are in the node's GossipSub mesh of a
// tracker's topic.
func (n *Node) MeshPeers(t topics.TrackerID) int { return n.mesh.count(topics.TrackerTopic(t)) }

// TopicPeers returns how many peers the node knows on a tracker's topic.
func (n *Node) TopicPeers(t topics.TrackerID) int {
	return len(n.ps.ListPeers(topics.TrackerTopic(t)))
}

// Publish sends an announcement, already appended to the node's store, to
// its tracker's topic, which the node must follow. It does not wait for
// other nodes.
func (n *Node) Publish(ctx context.Context, a *topics.Announcement) error {
	n.mu.Lock()
	j, ok := n.joined[a.Payload.Tracker]
	n.mu.Unlock()
	if !ok {
		return fmt.Errorf("gossip: publish on %s: not following it", a.Payload.Tracker)
	}
	return j.topic.Publish(ctx, a.Raw())
}

// Connect dials a peer at addr (a multiaddr with /p2p/ID).
func (n *Node) Connect(ctx context.Context, addr string) error {
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return fmt.Errorf("gossip: connect %q: %w", addr, err)
	}
	if err := n.host.Connect(ctx, *ai); err != nil {
		return fmt.Errorf("gossip: connect %s: %w", ai.ID, err)
	}
	return nil
}

// Peers returns the node IDs of the connected libp2p peers.
func (n *Node) Peers() []string { return nodeIDs(n.host.Network().Peers()) }

// SyncPeers returns the node IDs of the peers with a direct connection,
// those sync can use (relayed connections never carry it).
func (n *Node) SyncPeers() []string {
	return nodeIDs(slices.DeleteFunc(n.host.Network().Peers(), func(p peer.ID) bool { return !n.direct(p) }))
}

// PeerScores returns each connected peer's GossipSub score, by node ID, as
// last inspected (once a second).
func (n *Node) PeerScores() map[string]float64 {
	n.scoreMu.Lock()
	defer n.scoreMu.Unlock()
	out := make(map[string]float64, len(n.scores))
	for p, s := range n.scores {
		out[p.String()] = s
	}
	return out
}

// nodeIDs returns the node IDs of peers: libp2p's peer IDs stay inside the
// package.
func nodeIDs(peers []peer.ID) []string {
	out := make([]string, len(peers))
	for i, p := range peers {
		out[i] = p.String()
	}
	return out
}

// decodeNodeID returns the peer ID of a node ID.
func decodeNodeID(id string) (peer.ID, error) {
	p, err := peer.Decode(id)
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrBadNodeID, id, err)
	}
	return p, nil
}

func (n *Node) inspectScores(scores map[peer.ID]float64) {
	n.scoreMu.Lock()
	n.scores = scores
	n.scoreMu.Unlock()
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	c := &n.stat
	n.mu.Lock()
	tracked := len(n.joined)
	n.mu.Unlock()
	s := Stats{
		Peers:                len(n.host.Network().Peers()),
		Trackers:             tracked,
		Accepted:             c.outcomes[topics.Accept].Load(),
		Ignored:              c.outcomes[topics.Ignore].Load(),
		Rejected:             c.outcomes[topics.Reject].Load(),
		Duplicates:           c.dupes.Load(),
		SeenDuplicates:       c.seenDupes.Load(),
		OverBudget:           c.overBudget.Load(),
		IgnoredAuthors:       c.ignoredAuthors.Load(),
		DiscoveryAccepted:    c.disc[topics.Accept].Load(),
		DiscoveryIgnored:     c.disc[topics.Ignore].Load(),
		DiscoveryRejected:    c.disc[topics.Reject].Load(),
		DroppedRPCs:          c.dropRPC.Load(),
		DroppedValidations:   c.dropVal.Load(),
		DroppedSubscriptions: c.dropSub.Load(),
		DroppedDiscoveries:   c.dropDisc.Load(),
		TrackersRefused:      c.refused.Load(),
		Joins:                c.joins.Load(),
		Leaves:               c.leaves.Load(),
		Deaths:               c.deaths.Load(),
	}
	if n.mem != nil {
		s.Members = n.mem.live()
	}
	s.Reachability = n.Reachability()
	s.DirectConns, s.RelayedConns, s.RelayReservations = n.connKinds()
	s.HolePunchesTried, s.HolePunchesWon = n.reach.punchTried.Load(), n.reach.punchWon.Load()
	s.DHTPeers = n.DHTPeers()
	return s
}

// Leave tells the other members this node is leaving and gives the notice
// time to spread, until ctx is done (five seconds at most when ctx has no
// deadline), then closes the node as Close does. It returns ctx's error if
// ctx ended the wait. After Close it does nothing.
func (n *Node) Leave(ctx context.Context) error {
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	var err error
	if n.mem != nil && !closed {
		if err = n.mem.leave(ctx); err != nil {
			err = fmt.Errorf("gossip: leave: %w", err)
		}
	}
	return errors.Join(err, n.Close())
}

// Close stops the node at once, in the reverse order of New. It is safe to
// call more than once.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	joinedTopics := n.joined
	n.joined = nil
	n.mu.Unlock()

	var errs []error
	if n.mem != nil {
		errs = append(errs, n.mem.shutdown())
	}
	for _, j := range joinedTopics {
		j.relay()
		errs = append(errs, j.topic.Close())
	}
	if n.discRelay != nil {
		n.discRelay()
	}
	if n.discTopic != nil {
		errs = append(errs, n.discTopic.Close())
	}
	n.cancel()
	if n.dht != nil {
		errs = append(errs, n.dht.Close())
	}
	if n.host != nil {
		errs = append(errs, n.host.Close())
	}
	n.wg.Wait()
	return errors.Join(errs...)
}

// hostAddrs returns the host's listen addresses, without /p2p.
func (n *Node) hostAddrs() []ma.Multiaddr { return n.host.Addrs() }
