package gossip

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A long-running node forgets members gone for longer than it retries them,
// and sweeps expired sync bans once there are many: neither list only grows.
func TestForgetAndSweep(t *testing.T) {
	now := time.Now()
	m := &members{known: map[peer.ID]*Member{
		"alive-long": {State: "alive", Since: now.Add(-48 * time.Hour)},
		"dead-old":   {State: "dead", Since: now.Add(-25 * time.Hour)},
		"left-old":   {State: "left", Since: now.Add(-25 * time.Hour)},
		"dead-new":   {State: "dead", Since: now.Add(-time.Hour)},
	}}
	m.forget(now.Add(-reconnectFor))
	if len(m.known) != 2 || m.known["alive-long"] == nil || m.known["dead-new"] == nil {
		t.Fatalf("kept %v", m.known)
	}

	s := &syncer{banned: map[peer.ID]time.Time{}}
	for i := range maxBanned {
		s.ban(peer.ID(fmt.Sprint("old", i)), now.Add(-time.Hour)) // expired by now
	}
	s.ban("recent", now.Add(-time.Minute))
	s.ban("new", now)
	if len(s.banned) != 2 || !s.isBanned("recent") || !s.isBanned("new") {
		t.Fatalf("%d bans kept", len(s.banned))
	}
}
