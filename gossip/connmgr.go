package gossip

import (
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
)

// kbucketTag is what kad-dht protects the peers of its two farthest buckets
// under (up to 40 of them): with that protection a node's connections never
// came back down to MaxPeers (BenchmarkDiscoveryAtScale: 40 to 106 peers
// with MaxPeers 16). Here they are valued instead, above other DHT peers
// (kad-dht tags those 5) and below a GossipSub mesh peer (20 a topic).
const (
	kbucketTag   = "kbucket"
	kbucketValue = 10
)

// boundedConns is the node's connection manager: libp2p's (its decaying
// tags, which GossipSub uses, included), except that the DHT's protection is
// only a value.
type boundedConns struct{ *connmgr.BasicConnMgr }

func (c boundedConns) Protect(p peer.ID, tag string) {
	if tag == kbucketTag {
		c.TagPeer(p, tag, kbucketValue)
		return
	}
	c.BasicConnMgr.Protect(p, tag)
}

func (c boundedConns) Unprotect(p peer.ID, tag string) bool {
	if tag == kbucketTag {
		c.UntagPeer(p, tag)
		return false
	}
	return c.BasicConnMgr.Unprotect(p, tag)
}
