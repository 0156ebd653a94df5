package gossip

// GraylistThreshold is the score below which a node ignores a peer's RPCs,
// for the external tests that check an attacker lands there.
const GraylistThreshold = graylistThreshold

// Protected reports whether the connection manager protects the node's
// connection to a peer under tag.
func (n *Node) Protected(id, tag string) bool {
	p, err := decodeNodeID(id)
	return err == nil && n.host.ConnManager().IsProtected(p, tag)
}
