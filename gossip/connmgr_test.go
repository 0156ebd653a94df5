package gossip

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/peer"
	bconnmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
)

// TestDHTProtectionIsAValue: the DHT's protection of its far buckets only
// values a peer, so connections still come down to MaxPeers; other tags
// protect, and GossipSub's decaying tags still work.
func TestDHTProtectionIsAValue(t *testing.T) {
	basic, err := bconnmgr.NewConnManager(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer basic.Close()
	cm := boundedConns{basic}
	p := peer.ID("a peer")
	cm.Protect(p, kbucketTag)
	if cm.IsProtected(p, kbucketTag) {
		t.Error("the DHT's protection protects")
	}
	if got := cm.GetTagInfo(p); got == nil || got.Tags[kbucketTag] != kbucketValue {
		t.Errorf("tag info %+v: want %s valued %d", got, kbucketTag, kbucketValue)
	}
	cm.Protect(p, "bootstrap")
	if !cm.IsProtected(p, "bootstrap") {
		t.Error("a bootstrap peer is not protected")
	}
	if _, ok := connmgr.SupportsDecay(cm); !ok {
		t.Error("decaying tags lost")
	}
}

// fakeDiscovery counts lookups and finds nothing.
type fakeDiscovery struct{ finds int }

func (c *fakeDiscovery) Advertise(context.Context, string, ...discovery.Option) (time.Duration, error) {
	return time.Hour, nil
}

func (c *fakeDiscovery) FindPeers(context.Context, string, ...discovery.Option) (<-chan peer.AddrInfo, error) {
	c.finds++
	ch := make(chan peer.AddrInfo)
	close(ch)
	return ch, nil
}

// TestLookupsSpaced: GossipSub asks every second for a short topic; the DHT
// is asked after 5 s, 10 s, 20 s … 10 min, and at once again for a topic
// unasked that long.
func TestLookupsSpaced(t *testing.T) {
	inner := &fakeDiscovery{}
	now := time.Unix(0, 0)
	d := &topicDiscovery{rd: inner, sem: make(chan struct{}, 1), now: func() time.Time { return now }, lookups: map[string]*lookupPace{}}
	ask := func() {
		if _, err := d.FindPeers(context.Background(), "floodsub:ttn/tracker/x"); err != nil {
			t.Fatal(err)
		}
	}
	for range 60 * 60 { // an hour of GossipSub asking each second
		ask()
		now = now.Add(time.Second)
	}
	// 0, 5, 15, 35, 75, 155, 315, 635, 1235, 1835, 2435, 3035: 12 lookups.
	if inner.finds != 12 {
		t.Errorf("%d lookups in an hour; want 12", inner.finds)
	}
	ask() // at 3600 s: due at 3635
	now = now.Add(2 * lookupMax)
	ask() // unasked for a spell: at once
	if inner.finds != 13 {
		t.Errorf("%d lookups; want 13 (one more after a spell unasked)", inner.finds)
	}
	ask()
	if inner.finds != 13 {
		t.Errorf("%d lookups; want the spacing to start again", inner.finds)
	}
	if _, err := d.FindPeers(context.Background(), "floodsub:ttn/discovery"); err != nil || inner.finds != 13 {
		t.Errorf("the discovery topic was looked up (%v)", err)
	}
}
