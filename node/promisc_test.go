package node

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/topics"
)

// TestUnknownShare: a promiscuous node follows the trackers of unknown
// owners up to its unknown share and lists the rest as discovered; a
// trusted owner's trackers are followed past the share, and when the node
// is at its limit, an unknown owner's tracker makes room for one.
func TestUnknownShare(t *testing.T) {
	const maxTrackers, slots, floods, owned = 8, 4, 10, 4
	cfg := fastConfig(filepath.Join(t.TempDir(), "indexer"))
	cfg.Promiscuous, cfg.MaxTrackers, cfg.ReadyTimeout = true, maxTrackers, 100*time.Millisecond
	indexer := startNode(t, cfg)
	owner, _, _ := crypto.GenerateEd25519Key(nil)
	ownerID, _ := topics.NodeID(owner.GetPublic())
	if _, err := indexer.Trust(context.Background(), ownerID, topics.TrustTrusted, "", ""); err != nil {
		t.Fatal(err)
	}
	p := newNetPeer(t, nil)
	if err := p.net.Connect(context.Background(), indexer.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if p.net.DiscoveryPeers() == 0 {
			return fmt.Errorf("the indexer is not on the discovery topic yet")
		}
		return nil
	})
	announce := func(key crypto.PrivKey, name string) topics.TrackerID {
		raw, _ := topics.RawPublicKey(key.GetPublic())
		tr := topics.DeriveTrackerID(raw, name)
		rec, err := topics.SignDiscovery(key, &topics.Discovery{Tracker: tr, Title: name, Time: topics.FormatTime(time.Now())})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.net.PublishDiscovery(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	count := func(ts []topics.TrackerID) (n int) {
		for _, tr := range ts {
			if indexer.Followed(tr) {
				n++
			}
		}
		return n
	}

	var unknown []topics.TrackerID
	for i := range floods {
		key, _, _ := crypto.GenerateEd25519Key(nil)
		unknown = append(unknown, announce(key, fmt.Sprint("flood ", i)))
	}
	wait.For(t, 10*time.Second, func() error {
		d, _ := indexer.Discovered(context.Background())
		if got := count(unknown); got != slots || len(d) != floods-slots {
			return fmt.Errorf("following %d trackers of unknown owners, %d discovered; want %d and %d", got, len(d), slots, floods-slots)
		}
		return nil
	})

	// Its node tracker, the trusted owner's node tracker (followed as a
	// trusted node's), the unknown share and two of the owner's trackers
	// fill the node: the owner's third and fourth each take an unknown
	// owner's place.
	var trusted []topics.TrackerID
	for i := range owned {
		trusted = append(trusted, announce(owner, fmt.Sprint("trusted ", i)))
	}
	wait.For(t, 10*time.Second, func() error {
		if got, unk := count(trusted), count(unknown); got != owned || unk != maxTrackers-2-owned {
			return fmt.Errorf("following %d of the trusted owner's %d trackers and %d of unknown owners; want all and %d", got, owned, unk, maxTrackers-2-owned)
		}
		return nil
	})
}
