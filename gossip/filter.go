package gossip

import (
	"sync"
	"sync/atomic"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/thingtracker/ttn/topics"
)

// subFilter lets pubsub track only ttn topics, and at most max of them per
// remote peer: a peer announcing thousands of subscriptions costs us memory
// in pubsub's tables, so the excess is dropped (and counted).
type subFilter struct {
	max     int
	dropped *atomic.Uint64

	mu    sync.Mutex
	peers map[peer.ID]map[string]struct{}
}

var _ pubsub.SubscriptionFilter = (*subFilter)(nil)

func newSubFilter(max int, dropped *atomic.Uint64) *subFilter {
	return &subFilter{max: max, dropped: dropped, peers: make(map[peer.ID]map[string]struct{})}
}

// validTopic reports whether name is a ttn topic: the discovery topic or a
// tracker topic with a canonical tracker ID.
func validTopic(name string) bool {
	if name == topics.DiscoveryTopic {
		return true
	}
	_, err := topics.ParseTrackerTopic(name)
	return err == nil
}

func (f *subFilter) CanSubscribe(topic string) bool { return validTopic(topic) }

func (f *subFilter) FilterIncomingSubscriptions(from peer.ID, subs []*pb.RPC_SubOpts) ([]*pb.RPC_SubOpts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := f.peers[from]
	if seen == nil {
		seen = make(map[string]struct{})
		f.peers[from] = seen
	}
	out := subs[:0:0]
	for _, s := range subs {
		t := s.GetTopicid()
		if !validTopic(t) {
			f.dropped.Add(1)
			continue
		}
		if !s.GetSubscribe() {
			delete(seen, t)
			out = append(out, s)
			continue
		}
		if _, ok := seen[t]; !ok && len(seen) >= f.max {
			f.dropped.Add(1)
			continue
		}
		seen[t] = struct{}{}
		out = append(out, s)
	}
	return out, nil
}

// forget drops what is known of a peer that disconnected.
func (f *subFilter) forget(p peer.ID) {
	f.mu.Lock()
	delete(f.peers, p)
	f.mu.Unlock()
}
