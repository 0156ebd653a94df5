package node

import (
	"context"

	"github.com/thingtracker/ttn/control"
)

// Status reports the running node: the data dir's status plus the network.
func (n *Node) Status(context.Context) (*control.Status, error) {
	fs := n.follows.Get()
	d, err := n.Dir.Status(&fs)
	if err != nil {
		return nil, err
	}
	s := &control.Status{Status: *d, Running: true}
	s.Addrs, s.GossipAddr, s.Control = n.Addrs(), n.GossipAddr(), n.ControlPath()
	s.Peers = n.Peers()
	s.Members, s.Events = n.net.Members(), n.net.MemberEvents()
	s.Following = n.Following()
	s.Known = len(n.Known())
	s.Net = n.net.Stats()
	s.Sync, s.SyncPending = n.net.SyncStats(), n.syncQ.pending()
	if n.nats != nil {
		st := n.nats.Stats()
		s.NATS = &st
	}
	return s, nil
}
