package gossip_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thingtracker/ttn/internal/wait"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/record"

	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/topics"
)

// attacker is a bare libp2p host with GossipSub and no validation: it
// sends whatever bytes it is told to.
type attacker struct {
	t      *testing.T
	host   host.Host
	ps     *pubsub.PubSub
	topics map[string]*pubsub.Topic
}

func newAttacker(t *testing.T, victim *peer) *attacker {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(),
		pubsub.WithFloodPublish(true), pubsub.WithPeerOutboundQueueSize(8192),
		pubsub.WithMessageIdFn(func(m *pb.Message) string { s := sha256.Sum256(m.Data); return string(s[:]) }))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	a := &attacker{t: t, host: h, ps: ps, topics: map[string]*pubsub.Topic{}}
	t.Cleanup(func() { cancel(); h.Close() })
	if err := victim.node.Connect(context.Background(), h.Addrs()[0].String()+"/p2p/"+h.ID().String()); err != nil {
		t.Fatal(err)
	}
	return a
}

// join joins topic and waits until the victim is seen on it.
func (a *attacker) join(name string, victim *peer) *pubsub.Topic {
	a.t.Helper()
	if tp, ok := a.topics[name]; ok {
		return tp
	}
	tp, err := a.ps.Join(name)
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := tp.Relay(); err != nil {
		a.t.Fatal(err)
	}
	a.topics[name] = tp
	wait.For(a.t, 10*time.Second, func() error {
		for _, p := range tp.ListPeers() {
			if p.String() == victim.node.ID() {
				return nil
			}
		}
		return fmt.Errorf("attacker does not see the victim on %s", name)
	})
	return tp
}

// announce subscribes to a topic without waiting for anyone.
func (a *attacker) announce(name string) {
	a.t.Helper()
	tp, err := a.ps.Join(name)
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := tp.Relay(); err != nil {
		a.t.Fatal(err)
	}
}

func (a *attacker) send(name string, victim *peer, data []byte) {
	a.t.Helper()
	if err := a.join(name, victim).Publish(context.Background(), data); err != nil {
		a.t.Fatal(err)
	}
}

// network is the abuse tests' topology: an honest publisher and an
// attacker both connected to a victim, which relays to an observer. The
// observer hears only what the victim forwards.
type network struct {
	honest, victim, observer *peer
	tracker                  topics.TrackerID // the honest publisher's
}

func newNetwork(t *testing.T, victimTweak func(*gossip.Config)) *network {
	t.Helper()
	off := func(c *gossip.Config) { c.GossipAddr, c.NoDHT = "off", true } // the topology stays as built
	both := func(c *gossip.Config) {
		off(c)
		c.SeenTTL = time.Second
		if victimTweak != nil {
			victimTweak(c)
		}
	}
	n := &network{
		honest:   start(t, nil, off),
		victim:   start(t, nil, both),
		observer: start(t, nil, func(c *gossip.Config) { off(c); c.SeenTTL = time.Second }),
	}
	n.tracker = topics.DeriveTrackerID(n.honest.raw, "honest")
	for _, p := range []*peer{n.honest, n.victim, n.observer} {
		if err := p.node.Follow(n.tracker); err != nil {
			t.Fatal(err)
		}
	}
	connect(t, n.honest, n.victim)
	connect(t, n.victim, n.observer)
	wait.For(t, 10*time.Second, func() error {
		if n.honest.node.TopicPeers(n.tracker) != 1 || n.observer.node.TopicPeers(n.tracker) != 1 || n.victim.node.TopicPeers(n.tracker) != 2 {
			return fmt.Errorf("topic peers: honest %d victim %d observer %d", n.honest.node.TopicPeers(n.tracker),
				n.victim.node.TopicPeers(n.tracker), n.observer.node.TopicPeers(n.tracker))
		}
		return nil
	})
	wait.For(t, 10*time.Second, func() error {
		if n.victim.node.MeshPeers(n.tracker) != 2 || n.observer.node.MeshPeers(n.tracker) != 1 {
			return fmt.Errorf("mesh not formed: victim %d, observer %d", n.victim.node.MeshPeers(n.tracker), n.observer.node.MeshPeers(n.tracker))
		}
		return nil
	})
	return n
}

func connect(t *testing.T, a, b *peer) {
	t.Helper()
	if err := a.node.Connect(context.Background(), b.node.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
}

// honestRound publishes n announcements and checks the observer gets them
// all: honest delivery stays complete whatever the attacker does.
func (n *network) honestRound(t *testing.T, count int) {
	t.Helper()
	before := len(n.observer.trackerIDs(t, n.tracker))
	n.honest.publish(t, n.tracker, count)
	wait.For(t, 10*time.Second, func() error {
		if got := len(n.observer.trackerIDs(t, n.tracker)); got != before+count {
			return fmt.Errorf("observer holds %d honest announcements, want %d (victim holds %d; victim %+v; observer %+v)", got, before+count, len(n.victim.trackerIDs(t, n.tracker)), n.victim.node.Stats(), n.observer.node.Stats())
		}
		return nil
	})
}

// sign signs a valid announcement of key on its tracker name.
func sign(t *testing.T, key crypto.PrivKey, name string, seq uint64, prev topics.ID, title string) *topics.Announcement {
	t.Helper()
	raw, _ := topics.RawPublicKey(key.GetPublic())
	a, err := topics.Sign(key, &topics.Payload{V: 1, Kind: topics.KindThing, Tracker: topics.DeriveTrackerID(raw, name),
		Seq: seq, Prev: prev, Time: topics.FormatTime(time.Now()), Thing: &topics.Thing{ID: "x", Title: title, Version: fmt.Sprint(seq)}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newKey(t *testing.T) crypto.PrivKey {
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestInvalidMessagesRejected: each kind of invalid message is rejected by
// the victim, never stored or forwarded, and puts its sender below the
// graylist at once.
func TestInvalidMessagesRejected(t *testing.T) {
	checkLeaks(t)
	n := newNetwork(t, nil)
	n.honestRound(t, 5)
	topic := topics.TrackerTopic(n.tracker)

	// A valid announcement of the honest tracker, to tamper with.
	good := sign(t, n.honest.key, "honest", 100, topics.IDOf([]byte("p")), "genuine")
	badSig := bytes.Clone(good.Raw())
	badSig[len(badSig)-1] ^= 1
	other := newKey(t)
	secp, _, _ := crypto.GenerateSecp256k1Key(nil)
	secpEnv, err := record.Seal(&rawRecord{typ: topics.AnnouncementType, payload: good.Env.Payload}, secp)
	if err != nil {
		t.Fatal(err)
	}
	secpBytes, _ := secpEnv.Marshal()
	discType, err := topics.Seal(n.honest.key, topics.DiscoveryType, good.Env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	wrongTopic := sign(t, n.honest.key, "elsewhere", 1, topics.ID{}, "x")

	for _, tc := range []struct {
		name  string
		topic string
		data  []byte
	}{
		{"bad signature", topic, badSig},
		{"wrong topic", topic, wrongTopic.Raw()},
		{"oversize", topic, bytes.Repeat([]byte{7}, topics.MaxEnvelopeSize+100)},
		{"re-framed", topic, reframe(good.Raw())},
		{"unknown protobuf field", topic, append(bytes.Clone(good.Raw()), 0x4a, 0x01, 0x00)},
		{"discovery payload type", topic, discType},
		{"secp256k1 key", topic, secpBytes},
		{"author not the owner", topic, sign(t, other, "honest", 1, topics.ID{}, "x").Raw()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAttacker(t, n.victim)
			rejected := n.victim.node.Stats().Rejected
			stored := n.victim.log.Last()
			a.send(tc.topic, n.victim, tc.data)
			wait.For(t, 10*time.Second, func() error {
				if n.victim.node.Stats().Rejected == rejected {
					return fmt.Errorf("not rejected yet")
				}
				return graylisted(n.victim, a)
			})
			if n.victim.log.Last() != stored {
				t.Error("the victim stored it")
			}
			if st := n.observer.node.Stats(); st.Rejected != 0 {
				t.Errorf("the victim forwarded it: the observer rejected %d", st.Rejected)
			}
		})
	}
	n.honestRound(t, 5)
}

// TestReplayAfterSeenCacheExpiry: an old envelope sent again once pubsub
// has forgotten its ID is recognised by the log and not forwarded again.
// (pubsub sweeps its seen-cache once a minute; a restarted node has an
// empty seen-cache and the same log, the state the test needs, at once.)
func TestReplayAfterSeenCacheExpiry(t *testing.T) {
	checkLeaks(t)
	n := newNetwork(t, nil)
	n.honestRound(t, 3)
	es, err := n.victim.log.Entries(0, 1)
	if err != nil || len(es) != 1 {
		t.Fatal(err)
	}
	off := func(c *gossip.Config) { c.GossipAddr, c.NoDHT = "off", true }
	n.victim.node.Close()
	victim := launch(t, n.victim.key, n.victim.log, nil, off)
	// A new observer, which has not seen the envelope: it would store it if
	// the victim forwarded it.
	observer := start(t, nil, off)
	for _, p := range []*peer{victim, observer} {
		if err := p.node.Follow(n.tracker); err != nil {
			t.Fatal(err)
		}
	}
	connect(t, victim, observer)
	wait.For(t, 10*time.Second, func() error {
		if victim.node.MeshPeers(n.tracker) != 1 {
			return fmt.Errorf("restarted victim not meshed with the new observer")
		}
		return nil
	})
	a := newAttacker(t, victim)
	a.send(topics.TrackerTopic(n.tracker), victim, es[0].Envelope)
	wait.For(t, 10*time.Second, func() error {
		if victim.node.Stats().Duplicates != 1 {
			return fmt.Errorf("the victim has not recognised the replay")
		}
		return nil
	})
	// A sentinel: a new honest announcement through the same victim. The
	// victim's stream to the observer is in order, so once the sentinel is
	// there, a forwarded replay would be too.
	hs, err := victim.log.TrackerHeads(n.tracker)
	if err != nil || len(hs) != 1 {
		t.Fatalf("victim's heads: %v %v", hs, err)
	}
	sentinel := sign(t, n.honest.key, "honest", hs[0].Max+1, hs[0].MaxID, "sentinel")
	a.send(topics.TrackerTopic(n.tracker), victim, sentinel.Raw())
	wait.For(t, 10*time.Second, func() error {
		if observer.log.Last() == 0 {
			return errors.New("the sentinel has not reached the observer")
		}
		return nil
	})
	if got := observer.node.Stats(); got.Accepted != 1 || got.Ignored+got.SeenDuplicates != 0 || observer.log.Last() != 1 {
		t.Errorf("the replay was forwarded: the observer saw %+v", got)
	}
	n.victim = victim
	if s := n.victim.node.PeerScores()[a.host.ID().String()]; s < 0 {
		t.Errorf("an old but valid envelope cost its sender score: %v", s)
	}
}

// TestForkingAuthor: two different entries for one seq: the second stops at
// the first hop, the chain is frozen, the fork is reported.
func TestForkingAuthor(t *testing.T) {
	checkLeaks(t)
	n := newNetwork(t, nil)
	key := newKey(t)
	raw, _ := topics.RawPublicKey(key.GetPublic())
	tracker := topics.DeriveTrackerID(raw, "forked")
	for _, p := range []*peer{n.victim, n.observer} {
		if err := p.node.Follow(tracker); err != nil {
			t.Fatal(err)
		}
	}
	a := newAttacker(t, n.victim)
	topic := topics.TrackerTopic(tracker)
	s1 := sign(t, key, "forked", 1, topics.ID{}, "one")
	s2a := sign(t, key, "forked", 2, s1.ID, "two")
	s2b := sign(t, key, "forked", 2, s1.ID, "two, again")
	s3 := sign(t, key, "forked", 3, s2a.ID, "three")
	// The victim relays to its mesh: a message relayed before the
	// observer is grafted never reaches it.
	wait.For(t, 10*time.Second, func() error {
		if n.observer.node.MeshPeers(tracker) == 0 || n.victim.node.MeshPeers(tracker) == 0 {
			return fmt.Errorf("victim and observer not meshed on the topic yet")
		}
		return nil
	})
	a.send(topic, n.victim, s1.Raw())
	a.send(topic, n.victim, s2a.Raw())
	wait.For(t, 10*time.Second, func() error {
		if got := len(n.observer.trackerIDs(t, tracker)); got != 2 {
			return fmt.Errorf("observer holds %d of the honest-looking part", got)
		}
		return nil
	})
	a.send(topic, n.victim, s2b.Raw())
	wait.For(t, 10*time.Second, func() error {
		if n.victim.log.Stats().Forks != 1 {
			return fmt.Errorf("victim has not seen the fork")
		}
		return nil
	})
	a.send(topic, n.victim, s3.Raw())
	wait.For(t, 10*time.Second, func() error {
		if n.victim.log.Stats().Frozen != 1 {
			return fmt.Errorf("victim has not refused the entry after the fork")
		}
		return nil
	})
	// A sentinel through the same victim: its stream to the observer is in
	// order, so anything it forwarded of the fork is there once this is.
	n.honestRound(t, 1)
	if got := n.observer.trackerIDs(t, tracker); len(got) != 2 || got[s2b.ID] != 0 || got[s3.ID] != 0 {
		t.Fatalf("the observer got past the fork: %v", got)
	}
	held := n.victim.trackerIDs(t, tracker)
	if held[s2b.ID] != 1 || held[s3.ID] != 0 {
		t.Errorf("victim should keep the evidence and nothing after: %v", held)
	}
	hs, _ := n.victim.log.TrackerHeads(tracker)
	if len(hs) != 1 || hs[0].Fork == nil || hs[0].Fork.Seq != 2 {
		t.Errorf("fork not reported: %+v", hs)
	}
	n.honestRound(t, 3)
}

// TestForgeriesSpendNoBudget: envelopes that carry an honest author's key
// but not its signature, from many peers, do not use up that author's
// budget: its announcements keep arriving.
func TestForgeriesSpendNoBudget(t *testing.T) {
	checkLeaks(t)
	n := newNetwork(t, func(c *gossip.Config) { c.AuthorRate, c.AuthorBurst = 0.1, 10 })
	prev := topics.IDOf([]byte("some earlier entry"))
	var attackers []*attacker
	for i := range 25 { // each attacker is graylisted after its first forgery
		ann, err := topics.Sign(n.honest.key, &topics.Payload{V: 1, Kind: topics.KindThing, Tracker: n.tracker,
			Seq: uint64(1000 + i), Prev: prev, Time: topics.FormatTime(time.Now()), Thing: &topics.Thing{ID: "f", Title: "forged", Version: "1"}})
		if err != nil {
			t.Fatal(err)
		}
		forged := slices.Clone(ann.Raw())
		forged[len(forged)-1] ^= 1 // the signature is the envelope's last field
		a := newAttacker(t, n.victim)
		a.send(topics.TrackerTopic(n.tracker), n.victim, forged)
		attackers = append(attackers, a)
	}
	wait.For(t, 10*time.Second, func() error {
		if r := n.victim.node.Stats().Rejected; r < 25 {
			return fmt.Errorf("victim rejected %d forgeries", r)
		}
		for i, a := range attackers {
			if err := graylisted(n.victim, a); err != nil {
				return fmt.Errorf("attacker %d: %w", i, err)
			}
		}
		return nil
	})
	n.honestRound(t, 5)
}

// TestAuthorOverBudget: an author over its rate budget is ignored; an
// honest author on the same node is not affected.
func TestAuthorOverBudget(t *testing.T) {
	checkLeaks(t)
	n := newNetwork(t, func(c *gossip.Config) { c.AuthorRate, c.AuthorBurst = 5, 20 })
	key := newKey(t)
	raw, _ := topics.RawPublicKey(key.GetPublic())
	tracker := topics.DeriveTrackerID(raw, "loud")
	if err := n.victim.node.Follow(tracker); err != nil {
		t.Fatal(err)
	}
	a := newAttacker(t, n.victim)
	var prev topics.ID
	for seq := uint64(1); seq <= 200; seq++ {
		ann := sign(t, key, "loud", seq, prev, "spam")
		prev = ann.ID
		a.send(topics.TrackerTopic(tracker), n.victim, ann.Raw())
	}
	n.honestRound(t, 10) // meanwhile
	wait.For(t, 10*time.Second, func() error {
		if n.victim.node.Stats().OverBudget < 100 {
			return fmt.Errorf("over budget: %d", n.victim.node.Stats().OverBudget)
		}
		return nil
	})
	if got := len(n.victim.trackerIDs(t, tracker)); got > 60 {
		t.Errorf("the victim stored %d of the loud author's 200", got)
	}
}

// TestSubscriptionSpam: a peer announcing thousands of topics is capped.
func TestSubscriptionSpam(t *testing.T) {
	checkLeaks(t)
	n := newNetwork(t, func(c *gossip.Config) { c.MaxPeerTopics = 100 })
	a := newAttacker(t, n.victim)
	for i := range 2000 {
		var id topics.TrackerID
		binary.BigEndian.PutUint64(id[:], uint64(i))
		a.announce(topics.TrackerTopic(id))
	}
	for _, bad := range []string{"not/ttn", "ttn/tracker/NOTANID"} {
		a.announce(bad)
	}
	wait.For(t, 10*time.Second, func() error {
		if d := n.victim.node.Stats().DroppedSubscriptions; d < 1900 {
			return fmt.Errorf("dropped subscriptions: %d", d)
		}
		return nil
	})
	n.honestRound(t, 3)
}

// TestDiscoverySpam: discovery records from fresh keys, and a flood from
// one key: an indexer stays under its tracker cap, and the flood is
// ignored beyond the author's budget.
//
// The victim's clock stands still while the records arrive, so the loud
// key's budget cannot refill however slowly a loaded machine delivers the
// flood: all of it beyond the burst (discoveryAuthorBurst, 200) is ignored.
func TestDiscoverySpam(t *testing.T) {
	checkLeaks(t)
	const fresh, flood, burst = 100, 400, 200
	var frozen atomic.Pointer[time.Time] // the victim's clock, when set
	var indexer *peer
	n := newNetwork(t, func(c *gossip.Config) {
		c.MaxTrackers = 20
		c.OnDiscovery = func(d topics.Discovery) { indexer.node.Follow(d.Tracker) }
		c.Now = func() time.Time {
			if at := frozen.Load(); at != nil {
				return *at
			}
			return time.Now()
		}
	})
	indexer = n.victim
	a := newAttacker(t, n.victim)
	record := func(key crypto.PrivKey, name string) []byte {
		raw, _ := topics.RawPublicKey(key.GetPublic())
		b, err := topics.SignDiscovery(key, &topics.Discovery{Tracker: topics.DeriveTrackerID(raw, name), HeadSeq: 1,
			HeadID: topics.IDOf([]byte(name)), Time: topics.FormatTime(time.Now())})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	start := time.Now()
	frozen.Store(&start)
	for i := range fresh {
		a.send(topics.DiscoveryTopic, n.victim, record(newKey(t), fmt.Sprint(i)))
	}
	loud := newKey(t)
	for i := range flood {
		a.send(topics.DiscoveryTopic, n.victim, record(loud, fmt.Sprint(i)))
	}
	wait.For(t, 10*time.Second, func() error {
		st := n.victim.node.Stats()
		if st.DiscoveryAccepted+st.DiscoveryIgnored < fresh+flood {
			return fmt.Errorf("validated %d of %d", st.DiscoveryAccepted+st.DiscoveryIgnored, fresh+flood)
		}
		// The indexer follows what it learns as the records are handed
		// over, after validation: wait until it has met its cap.
		if st.TrackersRefused == 0 {
			return fmt.Errorf("indexer follows %d trackers, none refused yet", st.Trackers)
		}
		return nil
	})
	frozen.Store(nil)
	st := n.victim.node.Stats()
	if st.Trackers > 20 {
		t.Errorf("indexer follows %d trackers (%d refused); cap 20", st.Trackers, st.TrackersRefused)
	}
	if st.DiscoveryIgnored < flood-burst {
		t.Errorf("the flooding key's records were not limited: %d ignored, want at least %d", st.DiscoveryIgnored, flood-burst)
	}
	if st.DiscoveryRejected != 0 {
		t.Errorf("%d valid records rejected", st.DiscoveryRejected)
	}
	n.honestRound(t, 3)
}

// TestInvalidDiscoveryRejected: each kind of invalid discovery record is
// rejected by the victim, not forwarded, and puts its sender below the
// graylist at once, as an invalid announcement does.
func TestInvalidDiscoveryRejected(t *testing.T) {
	checkLeaks(t)
	n := newNetwork(t, nil)
	key := newKey(t)
	raw, _ := topics.RawPublicKey(key.GetPublic())
	valid := func() *topics.Discovery {
		return &topics.Discovery{Tracker: topics.DeriveTrackerID(raw, "found"), HeadSeq: 1,
			HeadID: topics.IDOf([]byte("head")), Time: topics.FormatTime(time.Now())}
	}
	signed := func(key crypto.PrivKey, d *topics.Discovery) []byte {
		b, err := topics.SignDiscovery(key, d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	badSig := signed(key, valid())
	badSig[len(badSig)-1] ^= 1 // the signature is the envelope's last field
	notOwned := signed(newKey(t), valid())
	badHead := valid()
	badHead.HeadID = topics.ID{}
	extra, err := topics.Seal(key, topics.DiscoveryType, []byte(`{"v":1,"tracker":"`+valid().Tracker.String()+`","surplus":1}`))
	if err != nil {
		t.Fatal(err)
	}
	announcement := sign(t, key, "found", 1, topics.ID{}, "an announcement on the discovery topic").Raw()

	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"bad signature", badSig},
		{"tracker not the signer's", notOwned},
		{"head seq without head id", signed(key, badHead)},
		{"unknown member", extra},
		{"announcement payload type", announcement},
		{"not an envelope", []byte("hello")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := topics.ValidateDiscovery(tc.data, time.Now()); topics.OutcomeOf(err) != topics.Reject {
				t.Fatalf("the record is not invalid: %v", err)
			}
			a := newAttacker(t, n.victim)
			rejected := n.victim.node.Stats().DiscoveryRejected
			a.send(topics.DiscoveryTopic, n.victim, tc.data)
			wait.For(t, 10*time.Second, func() error {
				if n.victim.node.Stats().DiscoveryRejected == rejected {
					return fmt.Errorf("not rejected yet")
				}
				return graylisted(n.victim, a)
			})
			if st := n.observer.node.Stats(); st.DiscoveryRejected+st.DiscoveryAccepted != 0 {
				t.Errorf("the victim forwarded it: the observer saw %+v", st)
			}
		})
	}
	n.honestRound(t, 3)
}

// graylisted says why a's score at the victim is not yet below the graylist
// threshold, where GossipSub ignores every RPC of the peer.
func graylisted(victim *peer, a *attacker) error {
	s, ok := victim.node.PeerScores()[a.host.ID().String()]
	if !ok || s >= gossip.GraylistThreshold {
		return fmt.Errorf("attacker's score at the victim is %v (known %v), not below the graylist (%v)", s, ok, gossip.GraylistThreshold)
	}
	return nil
}

// rawRecord lets the test seal any payload with any key type.
type rawRecord struct{ typ, payload []byte }

func (r *rawRecord) Domain() string                       { return topics.Domain }
func (r *rawRecord) Codec() []byte                        { return r.typ }
func (r *rawRecord) MarshalRecord() ([]byte, error)       { return r.payload, nil }
func (r *rawRecord) UnmarshalRecord(payload []byte) error { r.payload = payload; return nil }

// reframe re-encodes an envelope with its fields in reverse order.
func reframe(raw []byte) []byte {
	e, err := topics.DecodeEnvelope(raw)
	if err != nil {
		panic(err)
	}
	field := func(n int, v []byte) []byte {
		b := binary.AppendUvarint(nil, uint64(n)<<3|2)
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...)
	}
	pub, _ := e.PublicKey()
	key, _ := crypto.MarshalPublicKey(pub)
	var b []byte
	b = append(b, field(5, e.Signature())...)
	b = append(b, field(3, e.Payload)...)
	b = append(b, field(2, e.PayloadType)...)
	return append(b, field(1, key)...)
}
