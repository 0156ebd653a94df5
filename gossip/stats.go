package gossip

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/thingtracker/ttn/topics"
)

// Stats is a snapshot of the node's counters. Every drop and every
// validation outcome is counted.
type Stats struct {
	Peers    int // connected libp2p peers
	Members  int // live memberlist members, besides this node
	Trackers int // tracker topics joined

	// Validation outcomes of tracker-topic messages. Duplicates (already
	// stored) and OverBudget (an author over its rate budget) are among the
	// ignored.
	Accepted, Ignored, Rejected, Duplicates, OverBudget uint64
	// IgnoredAuthors counts messages of authors Config.Standing ignores:
	// announcements, among Ignored, and discovery records, among
	// DiscoveryIgnored.
	IgnoredAuthors uint64
	// SeenDuplicates counts messages pubsub dropped because it had seen
	// their ID: copies that cost bandwidth but no validation.
	SeenDuplicates uint64
	// Validation outcomes of discovery records.
	DiscoveryAccepted, DiscoveryIgnored, DiscoveryRejected uint64

	// Drops.
	DroppedRPCs          uint64 // outbound RPCs dropped: a peer's queue was full
	DroppedValidations   uint64 // received messages dropped before validation: queue full or throttled
	DroppedSubscriptions uint64 // remote subscriptions refused: bad names, or a peer's cap
	DroppedDiscoveries   uint64 // discovery records not handed on: the consumer was busy
	TrackersRefused      uint64 // follows refused by MaxTrackers

	// Membership events seen since start.
	Joins, Leaves, Deaths uint64

	// Reach: what AutoNAT found (public, private, unknown); the relays
	// holding a reservation for this node; connections direct and through
	// a relay; hole punches tried and won; the DHT routing table's size.
	Reachability                     string
	RelayReservations                int
	DirectConns, RelayedConns        int
	HolePunchesTried, HolePunchesWon uint64
	DHTPeers                         int
}

type counters struct {
	outcomes       [3]atomic.Uint64 // tracker topics, by topics.Outcome
	disc           [3]atomic.Uint64 // discovery topic, by topics.Outcome
	dupes          atomic.Uint64
	seenDupes      atomic.Uint64
	overBudget     atomic.Uint64
	ignoredAuthors atomic.Uint64
	dropRPC        atomic.Uint64
	dropVal        atomic.Uint64
	dropSub        atomic.Uint64
	dropDisc       atomic.Uint64
	refused        atomic.Uint64
	joins          atomic.Uint64
	leaves         atomic.Uint64
	deaths         atomic.Uint64
}

func (c *counters) count(discovery bool, o topics.Outcome) {
	if discovery {
		c.disc[o].Add(1)
	} else {
		c.outcomes[o].Add(1)
	}
}

// tracer counts pubsub's drops and duplicates and keeps each topic's mesh.
type tracer struct {
	c    *counters
	mesh *meshes
}

// meshes records which peers are in this node's mesh of each topic.
type meshes struct {
	mu sync.Mutex
	m  map[string]map[peer.ID]struct{}
}

func (m *meshes) count(topic string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m[topic])
}

func (t tracer) Graft(p peer.ID, topic string) {
	t.mesh.mu.Lock()
	if t.mesh.m[topic] == nil {
		t.mesh.m[topic] = make(map[peer.ID]struct{})
	}
	t.mesh.m[topic][p] = struct{}{}
	t.mesh.mu.Unlock()
}

func (t tracer) Prune(p peer.ID, topic string) {
	t.mesh.mu.Lock()
	delete(t.mesh.m[topic], p)
	t.mesh.mu.Unlock()
}

func (t tracer) Leave(topic string) {
	t.mesh.mu.Lock()
	delete(t.mesh.m, topic)
	t.mesh.mu.Unlock()
}

func (t tracer) RemovePeer(p peer.ID) {
	t.mesh.mu.Lock()
	for _, peers := range t.mesh.m {
		delete(peers, p)
	}
	t.mesh.mu.Unlock()
}

func (t tracer) DuplicateMessage(*pubsub.Message) { t.c.seenDupes.Add(1) }

var _ pubsub.RawTracer = tracer{}

func (t tracer) DropRPC(*pubsub.RPC, peer.ID) { t.c.dropRPC.Add(1) }

func (t tracer) RejectMessage(_ *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationQueueFull, pubsub.RejectValidationThrottled:
		t.c.dropVal.Add(1)
	}
}

func (tracer) AddPeer(peer.ID, protocol.ID)             {}
func (tracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (tracer) OnClosedOutboundStream(peer.ID)           {}
func (tracer) Join(string)                              {}
func (tracer) ValidateMessage(*pubsub.Message)          {}
func (tracer) DeliverMessage(*pubsub.Message)           {}
func (tracer) ThrottlePeer(peer.ID)                     {}
func (tracer) RecvRPC(*pubsub.RPC)                      {}
func (tracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (tracer) UndeliverableMessage(*pubsub.Message)     {}

// quietHandler lowers two of pubsub's warnings to debug: connection-manager
// tag bumps dropped under bursts (harmless: the tags only rank peers for
// pruning; it would print once per message of a burst), and a provider
// record not published (topicDiscovery retries by itself; pubsub only sees
// the failure when the node stops).
type quietHandler struct{ slog.Handler }

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && (strings.HasPrefix(r.Message, "error bumping delivery tag") ||
		strings.HasPrefix(r.Message, "bootstrap: error providing rendezvous")) {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(as)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}
