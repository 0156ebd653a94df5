package node

import (
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/view"
)

// The network's snapshots as the front ends show them (package view; the
// log's are converted in datadir).

func viewMembers(ms []gossip.Member, connected map[string]bool) []view.Member {
	out := make([]view.Member, len(ms))
	for i, m := range ms {
		out[i] = view.Member{ID: m.ID, GossipAddr: m.GossipAddr, State: m.State, Since: m.Since, Connected: connected[m.ID]}
	}
	return out
}

func viewEvents(es []gossip.MemberEvent) []view.MemberEvent {
	out := make([]view.MemberEvent, len(es))
	for i, e := range es {
		out[i] = view.MemberEvent(e)
	}
	return out
}
