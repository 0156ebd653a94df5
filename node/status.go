package node

import (
	"context"

	"github.com/thingtracker/ttn/view"
)

// Status reports the running node: the data dir's status plus the network.
func (n *Node) Status(context.Context) (*view.Status, error) {
	fs := n.follows.Get()
	s, err := n.Dir.Status(&fs)
	if err != nil {
		return nil, err
	}
	s.Running = true
	s.Addrs, s.GossipAddr, s.Control = n.Addrs(), n.GossipAddr(), n.ControlPath()
	s.Peers = n.Peers()
	s.Members, s.Events = viewMembers(n.net.Members(), n.connected()), viewEvents(n.net.MemberEvents())
	s.Following = n.Following()
	s.Known = n.disc.Len()
	s.Net = view.NetStats(n.net.Stats())
	s.Sync, s.SyncPending = view.SyncStats(n.net.SyncStats()), n.syncQ.pending()
	s.Trust = make(map[string]int)
	for l, c := range n.book.Counts() {
		s.Trust[string(l)] = c
	}
	if n.nats != nil {
		st := view.NATSStats(n.nats.Stats())
		s.NATS = &st
	}
	ix := n.IndexStats()
	s.Index = &ix
	return s, nil
}

// IndexStats tells how far the search index has read the log.
func (n *Node) IndexStats() view.IndexStats { return view.IndexStats(n.index.Stats()) }

// connected returns the peers the node has a libp2p connection to.
func (n *Node) connected() map[string]bool {
	c := make(map[string]bool)
	for _, p := range n.net.Peers() {
		c[p] = true
	}
	return c
}
