package gossip

import (
	"net"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Peer scoring. An invalid message (Reject) costs its sender enough to fall
// below the graylist at once: Reject is only for what is invalid on every
// node, so an honest peer never sends one. Mesh-delivery deficits are not
// scored: tracker topics are quiet by nature, and silence is no offence.
const (
	gossipThreshold    = -10  // below: no gossip to or from the peer
	publishThreshold   = -50  // below: our publishes skip the peer
	graylistThreshold  = -80  // below: the peer's RPCs are ignored
	acceptPXThreshold  = 10   // peer exchange only from well-behaved peers
	opportunisticGraft = 3    // median mesh score that triggers grafting
	invalidWeight      = -100 // per invalid message, squared, per topic weight
)

// peerScoreParams returns the peer score parameters; appScore adds the
// application's own judgement of a peer (sync misbehaviour). Loopback, and
// the networks in colocated, may hold many peers behind one address.
func peerScoreParams(appScore func(peer.ID) float64, colocated ...*net.IPNet) *pubsub.PeerScoreParams {
	_, loop4, _ := net.ParseCIDR("127.0.0.0/8")
	_, loop6, _ := net.ParseCIDR("::1/128")
	return &pubsub.PeerScoreParams{
		Topics:            map[string]*pubsub.TopicScoreParams{},
		TopicScoreCap:     100,
		AppSpecificScore:  appScore,
		AppSpecificWeight: 1,
		// Many peers behind one address is a Sybil sign, except on loopback.
		IPColocationFactorWeight:    -5,
		IPColocationFactorThreshold: 8,
		IPColocationFactorWhitelist: append([]*net.IPNet{loop4, loop6}, colocated...),
		BehaviourPenaltyWeight:      -10,
		BehaviourPenaltyThreshold:   6,
		BehaviourPenaltyDecay:       pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:               pubsub.DefaultDecayInterval,
		DecayToZero:                 pubsub.DefaultDecayToZero,
		RetainScore:                 30 * time.Minute,
	}
}

func peerScoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             gossipThreshold,
		PublishThreshold:            publishThreshold,
		GraylistThreshold:           graylistThreshold,
		AcceptPXThreshold:           acceptPXThreshold,
		OpportunisticGraftThreshold: opportunisticGraft,
	}
}

// topicScoreParams are set on every topic the node joins; without them an
// invalid message on the topic would cost its sender nothing. pubsub scales
// the invalid-message penalty by the topic's weight; dividing it out keeps
// one invalid message below the graylist on every topic, the discovery
// topic's half weight included (it cost -50 there, above the graylist).
func topicScoreParams(weight float64, heartbeat time.Duration) *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight:                    weight,
		TimeInMeshWeight:               0.01,
		TimeInMeshQuantum:              heartbeat,
		TimeInMeshCap:                  3600,
		FirstMessageDeliveriesWeight:   1,
		FirstMessageDeliveriesDecay:    pubsub.ScoreParameterDecay(10 * time.Minute),
		FirstMessageDeliveriesCap:      50,
		InvalidMessageDeliveriesWeight: invalidWeight / weight,
		InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
	}
}
