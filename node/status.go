package node

import (
	"context"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/topics"
)

// Status is what a data dir, and the node running on it, report.
type Status struct {
	Node        string `json:"node"`
	Fingerprint string `json:"fingerprint"`
	Running     bool   `json:"running"` // false: read from the dir, no node runs

	Addrs      []string `json:"addrs,omitempty"`
	GossipAddr string   `json:"gossip_addr,omitempty"`
	Control    string   `json:"control,omitempty"`

	Peers   int                  `json:"peers"`
	Members []gossip.Member      `json:"members,omitempty"`
	Events  []gossip.MemberEvent `json:"member_events,omitempty"`

	Follows   FollowSet          `json:"follows"`             // stored
	Following []topics.TrackerID `json:"following,omitempty"` // joined topics, own trackers included
	Known     int                `json:"known_trackers"`      // learnt from discovery records

	Heads       []feed.Head      `json:"heads"`
	Log         feed.Stats       `json:"log"`
	Net         gossip.Stats     `json:"net"`
	Sync        gossip.SyncStats `json:"sync"`
	SyncPending int              `json:"sync_pending"` // trackers waiting to be synced
	NATS        *natsapi.Stats   `json:"nats,omitempty"`
}

// Gaps counts the missing ranges over all chains.
func (s *Status) Gaps() int {
	n := 0
	for _, h := range s.Heads {
		n += len(h.Gaps)
	}
	return n
}

// Forks counts the frozen chains.
func (s *Status) Forks() int {
	n := 0
	for _, h := range s.Heads {
		if h.Fork != nil {
			n++
		}
	}
	return n
}

// Status reports the data dir: identity, follows, chain heads, log.
func (c *Core) Status(context.Context) (*Status, error) {
	follows, err := Follows(c.Dir)
	if err != nil {
		return nil, err
	}
	return c.status(follows)
}

func (c *Core) status(follows FollowSet) (*Status, error) {
	heads, err := c.Log.Heads()
	if err != nil {
		return nil, err
	}
	return &Status{
		Node: c.ID.ID, Fingerprint: c.ID.Fingerprint,
		Follows: follows, Heads: heads, Log: c.Log.Stats(),
	}, nil
}

// Status reports the running node: the data dir's status plus the network.
func (n *Node) Status(context.Context) (*Status, error) {
	s, err := n.status(n.follows.get())
	if err != nil {
		return nil, err
	}
	s.Running = true
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
