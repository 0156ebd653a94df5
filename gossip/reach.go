package gossip

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/thingtracker/ttn/topics"
)

// Reachability settings (Config.Reachability).
const (
	// ReachAuto lets AutoNAT decide from what peers manage to dial back.
	ReachAuto = "auto"
	// ReachPublic is a node others can dial: a memberlist member, a DHT
	// server, a relay for private nodes.
	ReachPublic = "public"
	// ReachPrivate is a node behind NAT: no memberlist (it would be probed
	// as dead), a DHT client, reachable through relay reservations and
	// hole punching.
	ReachPrivate = "private"
)

// reach holds what the host's NAT traversal reports.
type reach struct {
	state      atomic.Value // string: public, private, unknown
	punchTried atomic.Uint64
	punchWon   atomic.Uint64
	hostUp     chan struct{} // closed once Node.host is set
}

// Trace implements holepunch.EventTracer: it counts hole punches.
func (r *reach) Trace(evt *holepunch.Event) {
	if e, ok := evt.Evt.(*holepunch.EndHolePunchEvt); ok {
		r.punchTried.Add(1)
		if e.Success {
			r.punchWon.Add(1)
		}
	}
}

// hostOptions returns the libp2p options for the node's transports and
// reachability: TCP and QUIC (TCP only in a private network), AutoNAT v2,
// relay, hole punching and port mapping, by Config.Reachability.
func (n *Node) hostOptions() []libp2p.Option {
	opts := []libp2p.Option{
		libp2p.Identity(n.cfg.Key),
		libp2p.ListenAddrStrings(n.cfg.Listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.EnableRelay(), // dial and accept relayed connections
		libp2p.EnableHolePunching(holepunch.WithTracer(&n.reach)),
		libp2p.EnableAutoNATv2(),
		libp2p.Ping(false),
	}
	if len(n.cfg.PSK) > 0 {
		opts = append(opts, libp2p.PrivateNetwork(pnet.PSK(n.cfg.PSK)))
	} else {
		opts = append(opts, libp2p.Transport(libp2pquic.NewTransport))
	}
	if !n.cfg.NoNATPortMap && !allLoopback(n.cfg.Listen) {
		opts = append(opts, libp2p.NATPortMap())
	}
	relaySvc := []libp2p.Option{libp2p.EnableNATService()} // answer others' AutoNAT dial-backs
	if !n.cfg.NoRelayService {
		// libp2p runs the relay only while the node is public, with its
		// default limits (2 minutes and 128 KiB each way a connection):
		// enough for what relayed connections carry, identify and hole
		// punching, since GossipSub and sync use direct connections only.
		relaySvc = append(relaySvc, libp2p.EnableRelayService())
	}
	autoRelay := libp2p.EnableAutoRelayWithPeerSource(n.relayCandidates,
		autorelay.WithMinCandidates(1),         // one bootstrap relay is enough to start
		autorelay.WithBootDelay(0),             // a home node should be reachable at once
		autorelay.WithMinInterval(time.Minute), // how often to ask for candidates
		autorelay.WithBackoff(time.Minute))
	switch n.cfg.Reachability {
	case ReachPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
		opts = append(opts, relaySvc...)
	case ReachPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate(), autoRelay)
	default:
		opts = append(opts, autoRelay)
		opts = append(opts, relaySvc...)
	}
	return opts
}

// allLoopback reports whether every listen address is on loopback: then
// there is nothing for a home router to map, and no reason to ask it.
func allLoopback(listen []string) bool {
	for _, s := range listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil || !manet.IsIPLoopback(a) {
			return false
		}
	}
	return true
}

// relayCandidates is AutoRelay's source of relays: the bootstrap peers,
// then connected peers and the DHT's that offer the relay service.
func (n *Node) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	go func() {
		defer close(out)
		select {
		case <-n.reach.hostUp:
		case <-ctx.Done():
			return
		}
		var sent []peer.ID
		send := func(ai peer.AddrInfo) bool {
			if slices.Contains(sent, ai.ID) {
				return true
			}
			select {
			case out <- ai:
				sent = append(sent, ai.ID)
				return len(sent) < num
			case <-ctx.Done():
				return false
			}
		}
		for _, ai := range n.boot {
			if !send(ai) {
				return
			}
		}
		candidates := n.host.Network().Peers()
		if n.dht != nil {
			candidates = append(candidates, n.dht.RoutingTable().ListPeers()...)
		}
		for _, p := range candidates {
			if ps, err := n.host.Peerstore().SupportsProtocols(p, relayHop); err != nil || len(ps) == 0 {
				continue
			}
			if !send(n.host.Peerstore().PeerInfo(p)) {
				return
			}
		}
	}()
	return out
}

const relayHop = "/libp2p/circuit/relay/0.2.0/hop"

// watchReachability follows AutoNAT's verdict. A node found private in auto
// mode leaves memberlist, where its members would probe it as dead.
func (n *Node) watchReachability() error {
	sub, err := n.host.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		return fmt.Errorf("gossip: reachability events: %w", err)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer sub.Close()
		for {
			select {
			case e := <-sub.Out():
				r := e.(event.EvtLocalReachabilityChanged).Reachability
				n.reach.state.Store(reachabilityName(r))
				n.cfg.Logger.Info("reachability", "state", reachabilityName(r))
				if r == network.ReachabilityPrivate && n.cfg.Reachability == ReachAuto {
					n.leaveMembership()
				}
			case <-n.ctx.Done():
				return
			}
		}
	}()
	return nil
}

func reachabilityName(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return ReachPublic
	case network.ReachabilityPrivate:
		return ReachPrivate
	}
	return "unknown"
}

// Reachability returns what the node knows of its reachability: public,
// private or unknown.
func (n *Node) Reachability() string {
	if s, ok := n.reach.state.Load().(string); ok {
		return s
	}
	switch n.cfg.Reachability {
	case ReachPublic, ReachPrivate:
		return n.cfg.Reachability
	}
	return "unknown"
}

// connKinds counts the connections that are direct and those through a
// relay, and the relays that hold a reservation for this node.
func (n *Node) connKinds() (direct, relayed, reservations int) {
	for _, c := range n.host.Network().Conns() {
		if c.Stat().Limited {
			relayed++
		} else {
			direct++
		}
	}
	for _, p := range n.host.Network().Peers() {
		if n.host.ConnManager().IsProtected(p, autorelayTag) {
			reservations++
		}
	}
	return direct, relayed, reservations
}

// autorelayTag is how AutoRelay protects the connection to a relay that
// holds a reservation for the node.
const autorelayTag = "autorelay"

// direct reports whether the node has a direct (not relayed) connection to
// a peer: sync runs only on those.
func (n *Node) direct(p peer.ID) bool {
	for _, c := range n.host.Network().ConnsToPeer(p) {
		if !c.Stat().Limited {
			return true
		}
	}
	return false
}

// The owner of a followed tracker is the one peer sure to have its whole
// history: the connection to it is kept. A tracker ID starts with a hash of
// its owner's key, so owners are known by that prefix (ownerKey).

// ownerKeyLen is how many bytes of a tracker ID name its owner.
var ownerKeyLen = len(topics.OwnerPrefix(nil))

// trackerOwner is t's owner, as an owner key.
func trackerOwner(t topics.TrackerID) string { return string(t[:ownerKeyLen]) }

// peerOwner is the owner key of a peer's trackers ("" for a key that owns
// none).
func peerOwner(p peer.ID) string {
	pub, err := p.ExtractPublicKey()
	if err != nil || pub.Type() != crypto.Ed25519 {
		return ""
	}
	raw, err := pub.Raw()
	if err != nil {
		return ""
	}
	return string(topics.OwnerPrefix(raw))
}

// protectOwner protects a newly connected peer that owns a followed tracker.
func (n *Node) protectOwner(p peer.ID) {
	owner := peerOwner(p)
	n.mu.Lock()
	owns := owner != "" && n.owners[owner] > 0
	n.mu.Unlock()
	if owns {
		n.host.ConnManager().Protect(p, "owner")
	}
}

// protectOwners protects (or no longer) the connected peers that are owner.
func (n *Node) protectOwners(owner string, protect bool) {
	for _, p := range n.host.Network().Peers() {
		switch {
		case peerOwner(p) != owner:
		case protect:
			n.host.ConnManager().Protect(p, "owner")
		default:
			n.host.ConnManager().Unprotect(p, "owner")
		}
	}
}

// Hole punching again. libp2p tries DCUtR once, when a relayed connection
// arrives, and a node that does not know its public address yet (it learns
// it from its peers' observations, in its first seconds) refuses the punch.
// So a node whose only connection to a peer is one it dialled through a
// relay closes it and dials again, now and then: the peer then tries again.
const (
	punchCheck    = 5 * time.Second  // how often relayed-only peers are looked at
	punchFirst    = 10 * time.Second // the first retry, after the relayed connection opens
	punchAttempts = 5                // retries per peer, each after twice the wait
)

func (n *Node) retryPunches() {
	defer n.wg.Done()
	type state struct {
		tries int
		next  time.Time
	}
	peers := map[peer.ID]*state{}
	t := time.NewTicker(punchCheck)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		relayedOnly := map[peer.ID]bool{}
		for _, c := range n.host.Network().Conns() {
			p := c.RemotePeer()
			if !c.Stat().Limited {
				relayedOnly[p] = false
			} else if _, seen := relayedOnly[p]; !seen && c.Stat().Direction == network.DirOutbound {
				relayedOnly[p] = true
			}
		}
		for p := range peers {
			if !relayedOnly[p] {
				delete(peers, p) // direct now, or gone
			}
		}
		for p, only := range relayedOnly {
			if !only {
				continue
			}
			s := peers[p]
			if s == nil {
				s = &state{next: now.Add(punchFirst)}
				peers[p] = s
			}
			if s.tries >= punchAttempts || now.Before(s.next) {
				continue
			}
			s.tries++
			s.next = now.Add(punchFirst << s.tries)
			n.redialRelayed(p)
		}
	}
}

// redialRelayed closes the relayed connections to p and dials it again
// through a relay: p, receiving the new one, tries a hole punch.
func (n *Node) redialRelayed(p peer.ID) {
	for _, c := range n.host.Network().ConnsToPeer(p) {
		if c.Stat().Limited {
			c.Close()
		}
	}
	ctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(n.ctx, "hole punch"), dialTimeout)
	defer cancel()
	if err := n.host.Connect(ctx, n.host.Peerstore().PeerInfo(p)); err != nil {
		n.cfg.Logger.Debug("redial through a relay", "peer", p.String(), "err", err)
	}
}
