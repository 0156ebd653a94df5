package gossip_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/topics"
)

// TestTopicPeersFromTheDHT: two private nodes (no memberlist) whose only
// peer is a public bootstrap node following nothing find each other
// through the DHT, as followers of the same tracker, and the follower gets
// what the other publishes. Without the DHT they never meet.
func TestTopicPeersFromTheDHT(t *testing.T) {
	checkLeaks(t)
	boot := start(t, nil, func(c *gossip.Config) { c.GossipAddr, c.Reachability = "off", gossip.ReachPublic })
	private := func(c *gossip.Config) {
		c.Reachability = gossip.ReachPrivate
		c.Bootstrap = []string{boot.node.Addrs()[0]}
	}
	a := start(t, nil, private)
	b := start(t, nil, private)
	if a.node.GossipAddr() != "" {
		t.Fatalf("a private node runs memberlist on %s", a.node.GossipAddr())
	}
	tracker := topics.DeriveTrackerID(a.raw, "shared")
	for _, p := range []*peer{a, b} {
		if err := p.node.Follow(tracker); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 30*time.Second, func() error {
		if a.node.MeshPeers(tracker) == 0 || b.node.MeshPeers(tracker) == 0 {
			return fmt.Errorf("mesh peers: a %d, b %d; DHT peers: a %d, b %d, boot %d", a.node.MeshPeers(tracker), b.node.MeshPeers(tracker),
				a.node.DHTPeers(), b.node.DHTPeers(), boot.node.DHTPeers())
		}
		return nil
	})
	a.publish(t, tracker, 3)
	wait.For(t, 10*time.Second, func() error {
		if got := len(b.trackerIDs(t, tracker)); got != 3 {
			return fmt.Errorf("b holds %d of 3", got)
		}
		return nil
	})
	if s := a.node.Stats(); s.Reachability != gossip.ReachPrivate || s.DirectConns == 0 {
		t.Errorf("a's stats: reachability %q, %d direct connections", s.Reachability, s.DirectConns)
	}
	if s := boot.node.Stats(); s.Reachability != gossip.ReachPublic || a.node.DHTPeers() != 1 {
		t.Errorf("bootstrap's reachability %q; a's DHT routing table has %d peers, want the bootstrap node", s.Reachability, a.node.DHTPeers())
	}
}

// TestRelayReservation: a private node keeps a relay reservation on its
// public bootstrap peer, and says so. (AutoRelay makes circuit addresses of
// public relay addresses only: none on loopback.)
func TestRelayReservation(t *testing.T) {
	checkLeaks(t)
	relay := start(t, nil, func(c *gossip.Config) { c.GossipAddr, c.Reachability = "off", gossip.ReachPublic })
	home := start(t, nil, func(c *gossip.Config) {
		c.GossipAddr, c.Reachability = "off", gossip.ReachPrivate
		c.Bootstrap = []string{relay.node.Addrs()[0]}
	})
	wait.For(t, 30*time.Second, func() error {
		if s := home.node.Stats(); s.RelayReservations != 1 {
			return fmt.Errorf("%d relay reservations", s.RelayReservations)
		}
		return nil
	})
}

// TestPrivateNetwork: with a PSK, only nodes holding the same key connect.
func TestPrivateNetwork(t *testing.T) {
	checkLeaks(t)
	psk := bytes.Repeat([]byte{7}, 32)
	withPSK := func(key []byte) func(*gossip.Config) {
		return func(c *gossip.Config) { c.GossipAddr, c.NoDHT, c.PSK = "off", true, key }
	}
	a := start(t, nil, withPSK(psk))
	same := start(t, nil, withPSK(psk))
	other := start(t, nil, withPSK(bytes.Repeat([]byte{8}, 32)))
	open := start(t, nil, withPSK(nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := same.node.Connect(ctx, a.node.Addrs()[0]); err != nil {
		t.Fatalf("same key: %v", err)
	}
	for name, p := range map[string]*peer{"another key": other, "no key": open} {
		if err := p.node.Connect(ctx, a.node.Addrs()[0]); err == nil {
			t.Errorf("%s: connected", name)
		}
	}
	if _, err := gossip.New(ctx, gossip.Config{Key: newKey(t), PSK: psk, // refused before it needs a Store
		Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}}); err == nil || !strings.Contains(err.Error(), "covers TCP only") {
		t.Errorf("a PSK with a QUIC listener: %v", err)
	}
}

// TestFindNode: a node finds another it has never heard of, by its ID
// alone, through the DHT of their common bootstrap node.
func TestFindNode(t *testing.T) {
	checkLeaks(t)
	boot := start(t, nil, func(c *gossip.Config) { c.GossipAddr, c.Reachability = "off", gossip.ReachPublic })
	viaBoot := func(c *gossip.Config) {
		c.GossipAddr, c.Reachability = "off", gossip.ReachPublic
		c.Bootstrap = []string{boot.node.Addrs()[0]}
	}
	a := start(t, nil, viaBoot)
	b := start(t, nil, viaBoot)
	wait.For(t, 10*time.Second, func() error {
		if boot.node.DHTPeers() < 2 {
			return fmt.Errorf("the bootstrap node's routing table has %d peers", boot.node.DHTPeers())
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.node.FindNode(ctx, b.node.ID()); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(a.node.Peers(), b.node.ID()) {
		t.Fatalf("a's peers %v lack b", a.node.Peers())
	}
}

// TestOwnersProtected: the connection to the owner of a followed tracker is
// kept when the connection manager trims, whether the follow comes before
// the connection or after, and no longer once its last tracker is
// unfollowed; another peer's is not.
func TestOwnersProtected(t *testing.T) {
	checkLeaks(t)
	off := func(c *gossip.Config) { c.GossipAddr, c.NoDHT = "off", true }
	a, before, after, other := start(t, nil, off), start(t, nil, off), start(t, nil, off), start(t, nil, off)
	if err := a.node.Follow(topics.DeriveTrackerID(before.raw, "designs")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peer{before, after, other} {
		connect(t, a, p)
	}
	if err := a.node.Follow(topics.DeriveTrackerID(after.raw, "designs")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if !a.node.Protected(before.node.ID(), "owner") || !a.node.Protected(after.node.ID(), "owner") {
			return fmt.Errorf("owners protected: followed before connecting %v, after %v",
				a.node.Protected(before.node.ID(), "owner"), a.node.Protected(after.node.ID(), "owner"))
		}
		return nil
	})
	if a.node.Protected(other.node.ID(), "owner") {
		t.Error("a peer owning no followed tracker is protected")
	}
	if err := a.node.Unfollow(topics.DeriveTrackerID(after.raw, "designs")); err != nil {
		t.Fatal(err)
	}
	if a.node.Protected(after.node.ID(), "owner") || !a.node.Protected(before.node.ID(), "owner") {
		t.Errorf("after unfollowing one owner's tracker: that owner protected %v, the other %v",
			a.node.Protected(after.node.ID(), "owner"), a.node.Protected(before.node.ID(), "owner"))
	}
}
