package gossip_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thingtracker/ttn/internal/wait"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	p2pnet "github.com/libp2p/go-libp2p/core/network"

	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/topics"
)

// standings is a Config.Standing the test changes as it goes: authors set
// are treated as set, the others get the defaults.
type standings struct {
	m atomic.Pointer[map[[32]byte]gossip.Standing]
}

func (s *standings) set(key crypto.PrivKey, st gossip.Standing) {
	raw, _ := topics.RawPublicKey(key.GetPublic())
	m := map[[32]byte]gossip.Standing{}
	if old := s.m.Load(); old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[[32]byte(raw)] = st
	s.m.Store(&m)
}

func (s *standings) of(author [32]byte) gossip.Standing {
	if m := s.m.Load(); m != nil {
		return (*m)[author]
	}
	return gossip.Standing{}
}

// discoveryRecord signs a discovery record for key's tracker name.
func discoveryRecord(t *testing.T, key crypto.PrivKey, name string) []byte {
	t.Helper()
	raw, _ := topics.RawPublicKey(key.GetPublic())
	b, err := topics.SignDiscovery(key, &topics.Discovery{Tracker: topics.DeriveTrackerID(raw, name), HeadSeq: 1,
		HeadID: topics.IDOf([]byte(name)), Time: topics.FormatTime(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIgnoredAuthor: the announcements and discovery records of an author
// the victim ignores are neither stored nor forwarded to the observer, cost
// the peer that sent them no score, and are counted; another author's pass
// through the victim as before.
func TestIgnoredAuthor(t *testing.T) {
	checkLeaks(t)
	var st standings
	n := newNetwork(t, func(c *gossip.Config) { c.Standing = st.of })
	st.set(n.honest.key, gossip.Standing{Ignore: true})

	// The other author, through an attacker: its tracker, meshed from the
	// victim to the observer, and its first record on each topic, to know
	// both paths to the observer are open.
	other := newKey(t)
	otherRaw, _ := topics.RawPublicKey(other.GetPublic())
	otherTracker := topics.DeriveTrackerID(otherRaw, "other")
	for _, p := range []*peer{n.victim, n.observer} {
		if err := p.node.Follow(otherTracker); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, func() error {
		if n.observer.node.MeshPeers(otherTracker) == 0 || n.victim.node.MeshPeers(otherTracker) == 0 {
			return errors.New("victim and observer not meshed on the other tracker yet")
		}
		if n.honest.node.DiscoveryPeers() == 0 {
			return errors.New("the ignored author sees no one on the discovery topic")
		}
		return nil
	})
	a := newAttacker(t, n.victim)
	first := sign(t, other, "other", 1, topics.ID{}, "first")
	a.send(topics.TrackerTopic(otherTracker), n.victim, first.Raw())
	a.send(topics.DiscoveryTopic, n.victim, discoveryRecord(t, other, "other"))
	wait.For(t, 10*time.Second, func() error {
		if st := n.observer.node.Stats(); st.Accepted != 1 || st.DiscoveryAccepted != 1 {
			return fmt.Errorf("the other author's first records have not reached the observer: %+v", st)
		}
		return nil
	})

	// The ignored author: its announcements and a discovery record.
	n.honest.publish(t, n.tracker, 5)
	if err := n.honest.node.Announce(context.Background(), &topics.Discovery{Tracker: n.tracker, HeadSeq: 1,
		HeadID: topics.IDOf([]byte("head")), Time: topics.FormatTime(time.Now())}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if got := n.victim.node.Stats().IgnoredAuthors; got < 6 {
			return fmt.Errorf("the victim ignored %d of the author's 6 messages", got)
		}
		return nil
	})

	// Sentinels from the other author: the victim's stream to the observer
	// is in order, so once they are there, anything forwarded before them is.
	second := sign(t, other, "other", 2, first.ID, "second")
	a.send(topics.TrackerTopic(otherTracker), n.victim, second.Raw())
	a.send(topics.DiscoveryTopic, n.victim, discoveryRecord(t, other, "other, again"))
	wait.For(t, 10*time.Second, func() error {
		if n.observer.trackerIDs(t, otherTracker)[second.ID] == 0 || n.observer.node.Stats().DiscoveryAccepted < 2 {
			return errors.New("the other author's sentinels have not reached the observer")
		}
		return nil
	})
	if got := len(n.victim.trackerIDs(t, n.tracker)); got != 0 {
		t.Errorf("the victim stored %d of the ignored author's announcements", got)
	}
	if got := len(n.observer.trackerIDs(t, n.tracker)); got != 0 {
		t.Errorf("the observer got %d of the ignored author's announcements", got)
	}
	if got := n.observer.node.Stats().DiscoveryAccepted; got != 2 {
		t.Errorf("the observer accepted %d discovery records; want the other author's 2", got)
	}
	vs := n.victim.node.Stats()
	if vs.Rejected+vs.DiscoveryRejected != 0 || vs.DiscoveryAccepted != 2 {
		t.Errorf("victim's outcomes: %+v", vs)
	}
	if s := n.victim.node.PeerScores()[n.honest.node.ID()]; s < 0 {
		t.Errorf("sending an ignored author's messages cost the peer score: %v", s)
	}
}

// TestStandingBudget: an author's standing sets its budget. At a rate of 1
// and a burst of 3, the fourth of a burst is over budget while an author
// with the defaults passes; raised, the author's bucket is refitted, not
// kept stale: it fills at the new rate.
//
// The victim's clock moves only when the test moves it, so no token comes
// from a loaded machine's slowness.
func TestStandingBudget(t *testing.T) {
	checkLeaks(t)
	var st standings
	var clock atomic.Pointer[time.Time]
	now := time.Now()
	clock.Store(&now)
	advance := func(d time.Duration) { at := clock.Load().Add(d); clock.Store(&at) }
	n := newNetwork(t, func(c *gossip.Config) {
		c.Standing = st.of
		c.Now = func() time.Time { return *clock.Load() }
	})
	key := newKey(t)
	raw, _ := topics.RawPublicKey(key.GetPublic())
	tracker := topics.DeriveTrackerID(raw, "low")
	st.set(key, gossip.Standing{Rate: 1, Burst: 3})
	if err := n.victim.node.Follow(tracker); err != nil {
		t.Fatal(err)
	}
	a := newAttacker(t, n.victim)
	validated := func() uint64 { s := n.victim.node.Stats(); return s.Accepted + s.Ignored + s.Rejected }
	var prev topics.ID
	seq := uint64(0)
	send := func() {
		t.Helper()
		seq++
		ann := sign(t, key, "low", seq, prev, "low")
		prev = ann.ID
		before := validated()
		a.send(topics.TrackerTopic(tracker), n.victim, ann.Raw())
		wait.For(t, 10*time.Second, func() error {
			if validated() == before {
				return fmt.Errorf("announcement %d not validated yet", seq)
			}
			return nil
		})
	}
	for range 4 {
		send()
	}
	if got, over := len(n.victim.trackerIDs(t, tracker)), n.victim.node.Stats().OverBudget; got != 3 || over != 1 {
		t.Fatalf("of a burst of 4 at burst 3, the victim stored %d and found %d over budget; want 3 and 1", got, over)
	}
	n.honestRound(t, 10) // an author with the defaults, at the same instant

	// Raised: the time until the first announcement after accrues at the
	// old rate (a token a second); from then on, at the new one, 10 tokens
	// each tenth of a second, where the old rate would give a tenth.
	st.set(key, gossip.Standing{Rate: 100, Burst: 50})
	advance(time.Second)
	for range 5 {
		send()
		advance(100 * time.Millisecond)
	}
	if got, over := len(n.victim.trackerIDs(t, tracker)), n.victim.node.Stats().OverBudget; got != 8 || over != 1 {
		t.Errorf("raised, the victim stored %d of 8 and found %d over budget; want 8 and 1", got, over)
	}
}

// history adapts the real log to gossip.History, as the node package does,
// for the tests' few chains: one page of heads, of the trackers asked for.
type history struct{ store }

func (h history) Heads(_ string, _ int, trackers []topics.TrackerID) ([]gossip.Head, string, error) {
	var out []gossip.Head
	for _, tr := range trackers {
		hs, err := h.Log.TrackerHeads(tr)
		if err != nil {
			return nil, "", err
		}
		for _, hd := range hs {
			g := gossip.Head{Tracker: hd.Tracker, Author: hd.Author, AuthorKey: hd.AuthorKey, Seq: hd.Seq, ID: hd.ID, Max: hd.Max}
			for _, r := range hd.Gaps {
				g.Gaps = append(g.Gaps, [2]uint64{r.From, r.To})
			}
			out = append(out, g)
		}
	}
	return out, "", nil
}

func (h history) Chain(tracker topics.TrackerID, author []byte, from uint64, limit int) ([]gossip.ChainEnvelope, error) {
	es, err := h.Log.Chain(tracker, author, from, limit)
	out := make([]gossip.ChainEnvelope, len(es))
	for i, e := range es {
		out[i] = gossip.ChainEnvelope{Seq: e.Seq, Variant: e.Variant, Envelope: e.Envelope}
	}
	return out, err
}

func (h history) AppendAll(ctx context.Context, anns []*topics.Announcement) ([]topics.Outcome, error) {
	rs, err := h.Log.AppendAll(ctx, anns)
	out := make([]topics.Outcome, len(rs))
	for i, r := range rs {
		out[i] = r.Status.Outcome()
	}
	return out, err
}

// forged serves a log's chains with every signature broken. (It does not
// embed the history: the log's ScanChain would serve them intact.)
type forged struct{ h history }

func (f forged) Heads(after string, limit int, trackers []topics.TrackerID) ([]gossip.Head, string, error) {
	return f.h.Heads(after, limit, trackers)
}

func (f forged) AppendAll(ctx context.Context, anns []*topics.Announcement) ([]topics.Outcome, error) {
	return f.h.AppendAll(ctx, anns)
}

func (f forged) Chain(tracker topics.TrackerID, author []byte, from uint64, limit int) ([]gossip.ChainEnvelope, error) {
	es, err := f.h.Chain(tracker, author, from, limit)
	for i := range es {
		es[i].Envelope = bytes.Clone(es[i].Envelope)
		es[i].Envelope[len(es[i].Envelope)-1] ^= 1 // the signature is the envelope's last field
	}
	return es, err
}

// serveForged starts a bare host answering every sync request with the
// forged chains of tracker in h; it returns the host's address and ID.
func serveForged(t *testing.T, h history, tracker topics.TrackerID) (addr, id string) {
	t.Helper()
	hst, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); hst.Close() })
	hst.SetStreamHandler(gossip.SyncProtocol, func(s p2pnet.Stream) {
		defer s.Close()
		br := bufio.NewReader(s)
		n, _ := binary.ReadUvarint(br)
		br.Discard(int(n)) // the request: whatever it is, all of tracker is sent
		gossip.ServeFetch(ctx, s, forged{h}, gossip.FetchRequest{Tracker: tracker, All: true}, nil)
	})
	return hst.Addrs()[0].String() + "/p2p/" + hst.ID().String(), hst.ID().String()
}

// TestSyncSkipsIgnoredAuthor: a fetch skips the chains of authors the
// requester ignores, unverified (forged ones cost the peer nothing) and
// unstored; a server that ignores an author neither offers nor serves its
// chain.
func TestSyncSkipsIgnoredAuthor(t *testing.T) {
	checkLeaks(t)
	var serverSt, requesterSt standings
	withHistory := func(st *standings) func(*gossip.Config) {
		return func(c *gossip.Config) {
			c.GossipAddr, c.NoDHT = "off", true
			c.History = history{c.Store.(store)}
			c.Standing = st.of
		}
	}
	server := start(t, nil, withHistory(&serverSt))
	requester := start(t, nil, withHistory(&requesterSt))
	connect(t, requester, server)

	// The server holds a chain of 10 of each author.
	ignored, other := newKey(t), newKey(t)
	chain := func(key crypto.PrivKey) topics.TrackerID {
		var anns []*topics.Announcement
		var prev topics.ID
		for seq := uint64(1); seq <= 10; seq++ {
			a := sign(t, key, "history", seq, prev, "old")
			anns, prev = append(anns, a), a.ID
		}
		if _, err := server.log.AppendAll(context.Background(), anns); err != nil {
			t.Fatal(err)
		}
		return anns[0].Payload.Tracker
	}
	ignoredTracker, otherTracker := chain(ignored), chain(other)
	requesterSt.set(ignored, gossip.Standing{Ignore: true})

	ctx := context.Background()
	res, err := requester.node.Fetch(ctx, server.node.ID(), ignoredTracker)
	if err != nil || res != (gossip.FetchResult{Planned: 10, Skipped: 10}) {
		t.Fatalf("fetching the ignored author's chain: %+v, %v; want all 10 skipped", res, err)
	}
	// From a peer that forged them: skipped as well, not verified, so not
	// the peer's fault.
	liar, liarID := serveForged(t, history{store{server.log}}, ignoredTracker)
	if err := requester.node.Connect(ctx, liar); err != nil {
		t.Fatal(err)
	}
	for range 2 { // not banned after the first
		res, err = requester.node.Fetch(ctx, liarID, ignoredTracker)
		if err != nil || res != (gossip.FetchResult{Planned: 10, Skipped: 10}) {
			t.Fatalf("fetching the ignored author's forged chain: %+v, %v; want all 10 skipped", res, err)
		}
	}
	if got := len(requester.trackerIDs(t, ignoredTracker)); got != 0 {
		t.Errorf("the requester stored %d of the ignored author's entries", got)
	}
	// The server is not at fault: it is neither banned nor dropped.
	res, err = requester.node.Fetch(ctx, server.node.ID(), otherTracker)
	if err != nil || res.Stored != 10 || res.Skipped != 0 {
		t.Fatalf("fetching the other author's chain: %+v, %v", res, err)
	}
	if s := requester.node.SyncStats(); s.Violations != 0 || s.Skipped != 30 || s.Stored != 10 {
		t.Errorf("requester's sync stats %+v", s)
	}

	// A server that ignores an author: the requester, no longer ignoring
	// it, is neither offered nor served its chain.
	requesterSt.set(ignored, gossip.Standing{})
	serverSt.set(ignored, gossip.Standing{Ignore: true})
	heads, err := requester.node.Inventory(ctx, server.node.ID(), []topics.TrackerID{ignoredTracker, otherTracker})
	if err != nil || len(heads) != 1 || heads[0].Tracker != otherTracker {
		t.Errorf("the server offered %+v, %v; want the other author's chain only", heads, err)
	}
	res, err = requester.node.Fetch(ctx, server.node.ID(), ignoredTracker)
	if err != nil || res != (gossip.FetchResult{}) {
		t.Errorf("the server served the author it ignores: %+v, %v", res, err)
	}
	serverSt.set(ignored, gossip.Standing{})
	res, err = requester.node.Fetch(ctx, server.node.ID(), ignoredTracker)
	if err != nil || res.Stored != 10 {
		t.Errorf("the author no longer ignored: %+v, %v; want 10 stored", res, err)
	}
}

// TestResetBeforePlanNotPenalised: a responder that resets the stream
// before its plan (stopping, busy, refusing a relayed connection) has
// broken no rule: the fetch fails, and the peer is neither banned nor
// dropped; one that sends a malformed plan is.
func TestResetBeforePlanNotPenalised(t *testing.T) {
	checkLeaks(t)
	requester := start(t, nil, func(c *gossip.Config) {
		c.GossipAddr, c.NoDHT = "off", true
		c.History = history{c.Store.(store)}
	})
	serve := func(answer func(p2pnet.Stream)) (addr, id string) {
		hst, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { hst.Close() })
		hst.SetStreamHandler(gossip.SyncProtocol, func(s p2pnet.Stream) {
			br := bufio.NewReader(s)
			n, _ := binary.ReadUvarint(br)
			br.Discard(int(n))
			answer(s)
		})
		return hst.Addrs()[0].String() + "/p2p/" + hst.ID().String(), hst.ID().String()
	}
	ctx := context.Background()
	tracker := sign(t, newKey(t), "history", 1, topics.ID{}, "x").Payload.Tracker

	resetAddr, resetID := serve(func(s p2pnet.Stream) { s.Reset() })
	if err := requester.node.Connect(ctx, resetAddr); err != nil {
		t.Fatal(err)
	}
	for range 2 { // not banned after the first
		if _, err := requester.node.Fetch(ctx, resetID, tracker); err == nil || errors.Is(err, gossip.ErrBadPeer) {
			t.Fatalf("fetch from a peer that reset: %v, want an error that is not ErrBadPeer", err)
		}
	}
	if s := requester.node.SyncStats(); s.Violations != 0 {
		t.Errorf("a reset counted as a violation: %+v", s)
	}

	badAddr, badID := serve(func(s p2pnet.Stream) {
		s.Write([]byte{3, 'X', 'Y', 'Z'}) // a message of an unknown kind
		s.Close()
	})
	if err := requester.node.Connect(ctx, badAddr); err != nil {
		t.Fatal(err)
	}
	if _, err := requester.node.Fetch(ctx, badID, tracker); !errors.Is(err, gossip.ErrBadPeer) {
		t.Fatalf("fetch from a peer with a malformed plan: %v, want ErrBadPeer", err)
	}
	if s := requester.node.SyncStats(); s.Violations != 1 {
		t.Errorf("a malformed plan: %+v, want one violation", s)
	}
}

// TestPublishDiscovery: a node passes on a record signed by another owner,
// which its peers accept as that owner's; a record that is not valid is
// refused before it is sent.
func TestPublishDiscovery(t *testing.T) {
	checkLeaks(t)
	got := make(chan topics.Discovery, 4)
	n := newNetwork(t, func(c *gossip.Config) { c.OnDiscovery = func(d topics.Discovery) { got <- d } })
	owner := newKey(t)
	ownerID, _ := topics.NodeID(owner.GetPublic())
	bad := discoveryRecord(t, owner, "forged")
	bad[len(bad)-1] ^= 1 // the signature is the envelope's last field
	if err := n.honest.node.PublishDiscovery(context.Background(), bad); err == nil {
		t.Fatal("a record with a bad signature was published")
	}
	if err := n.honest.node.PublishDiscovery(context.Background(), discoveryRecord(t, owner, "passed on")); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if d.Owner != ownerID {
			t.Fatalf("the record arrived as %s's, want %s's", d.Owner, ownerID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the record did not arrive")
	}
	if st := n.victim.node.Stats(); st.DiscoveryRejected != 0 || st.DiscoveryAccepted != 1 {
		t.Errorf("the victim saw %d rejected and %d accepted records, want the good one only", st.DiscoveryRejected, st.DiscoveryAccepted)
	}
}
