package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/internal/wait"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/topics"
)

// netPeer is a bare network node on its own log: the test decides what it
// publishes.
type netPeer struct {
	key crypto.PrivKey
	log *feed.Log
	net *gossip.Node
}

func newNetPeer(t *testing.T, key crypto.PrivKey) *netPeer {
	t.Helper()
	if key == nil {
		key, _, _ = crypto.GenerateEd25519Key(nil)
	}
	l, err := feed.Open(filepath.Join(t.TempDir(), "log"), feed.Config{})
	if err != nil {
		t.Fatal(err)
	}
	store := LogStore{Log: l}
	n, err := gossip.New(context.Background(), gossip.Config{Key: key, Store: store, History: store,
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}, GossipAddr: "off", Heartbeat: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(); l.Close() })
	return &netPeer{key: key, log: l, net: n}
}

// chain signs n linked Thing announcements of key on tracker name; variant
// changes their content.
func chain(t *testing.T, key crypto.PrivKey, name string, n int, variant string) []*topics.Announcement {
	t.Helper()
	return chainFrom(t, key, name, 1, topics.ID{}, n, variant)
}

// chainFrom signs n linked announcements from seq first, after prev.
func chainFrom(t *testing.T, key crypto.PrivKey, name string, first uint64, prev topics.ID, n int, variant string) []*topics.Announcement {
	t.Helper()
	raw, _ := topics.RawPublicKey(key.GetPublic())
	var out []*topics.Announcement
	for i := int(first); i < int(first)+n; i++ {
		a, err := topics.Sign(key, &topics.Payload{V: 1, Kind: topics.KindThing, Tracker: topics.DeriveTrackerID(raw, name),
			Seq: uint64(i), Prev: prev, Time: topics.FormatTime(time.Now()),
			Thing: &topics.Thing{ID: fmt.Sprintf("t%d", i), Title: "T " + variant, Version: "1"}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
		prev = a.ID
	}
	return out
}

func appendAll(t *testing.T, l *feed.Log, anns []*topics.Announcement) {
	t.Helper()
	if _, err := l.AppendAll(context.Background(), anns); err != nil {
		t.Fatal(err)
	}
}

// TestGapRepair: a live message a node missed is repaired through gap
// detection: the next one it receives shows the hole.
func TestGapRepair(t *testing.T) {
	cfg := fastConfig(filepath.Join(t.TempDir(), "b"))
	// Anti-entropy would repair the hole too, a minute later: out of the
	// test's way, only the gap can bring seq 3.
	cfg.AntiEntropyInterval = time.Hour
	b := startNode(t, cfg)
	c := newNetPeer(t, nil)
	anns := chain(t, c.key, "gappy", 5, "a")
	tracker := anns[0].Payload.Tracker
	if err := b.Follow(context.Background(), datadir.FollowSet{Trackers: []topics.TrackerID{tracker}}); err != nil {
		t.Fatal(err)
	}
	if err := c.net.Follow(tracker); err != nil {
		t.Fatal(err)
	}
	if err := c.net.Connect(context.Background(), b.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if c.net.MeshPeers(tracker) == 0 {
			return errors.New("no mesh yet")
		}
		// The sync following queued is over (c held nothing yet): only
		// the gap can bring seq 3 now.
		if p := b.syncQ.pending(); p != 0 {
			return fmt.Errorf("%d syncs pending", p)
		}
		return nil
	})
	appendAll(t, c.log, anns)
	for i, a := range anns {
		if i == 2 {
			continue // seq 3 is stored by c but never sent live
		}
		if err := c.net.Publish(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, func() error {
		hs, err := b.Log.TrackerHeads(tracker)
		if err != nil || len(hs) != 1 || hs[0].Seq != 5 || len(hs[0].Gaps) != 0 {
			return fmt.Errorf("b's head: %+v %v", hs, err)
		}
		// A fetch counts what it stored once it ends, after the log
		// shows it: wait for the repair to be over before reading them.
		if p := b.syncQ.pending(); p != 0 {
			return fmt.Errorf("%d syncs pending", p)
		}
		return nil
	})
	// Each of the five once: seqs 1, 2, 4, 5 live (or, for a later one,
	// by the repair if it came first), seq 3 only by the repair.
	st, err := b.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Sync.Stored < 1 || st.Net.Accepted+st.Sync.Stored != 5 {
		t.Errorf("seq 3 did not come by sync: %d live, sync %+v", st.Net.Accepted, st.Sync)
	}
}

// TestForkDiscoveredThroughHeads: the requester's head ID differs from the
// responder's at that seq: the responder sends its envelope, the requester
// stores it as fork evidence and freezes the chain.
func TestForkDiscoveredThroughHeads(t *testing.T) {
	key, _, _ := crypto.GenerateEd25519Key(nil)
	main := chain(t, key, "forked", 5, "main")
	alt := chainFrom(t, key, "forked", 3, main[1].ID, 3, "alt") // seqs 3..5 after main's 2
	tracker := main[0].Payload.Tracker
	b := newNetPeer(t, nil)
	c := newNetPeer(t, nil)
	appendAll(t, b.log, main)
	appendAll(t, c.log, append(main[:2:2], alt...)) // c diverges at seq 3, below b's head
	if err := b.net.Connect(context.Background(), c.net.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	r, err := b.net.Fetch(context.Background(), c.net.ID(), tracker)
	if err != nil {
		t.Fatal(err)
	}
	if r.Forks != 1 {
		t.Fatalf("fetch result %+v, want one fork", r)
	}
	hs, _ := b.log.TrackerHeads(tracker)
	if len(hs) != 1 || hs[0].Fork == nil || hs[0].Fork.Seq != 5 {
		t.Fatalf("head after the fetch: %+v", hs)
	}
}

// graylist is gossip's graylist threshold (gossip/score.go, unexported):
// below it a peer's GossipSub RPCs are ignored.
const graylist = -80

// TestBadResponderRefused: a responder sending tampered or unrequested
// envelopes is dropped and banned (not asked again, not served, its
// GossipSub score below the graylist), and nothing of what it sent is
// stored.
func TestBadResponderRefused(t *testing.T) {
	key, _, _ := crypto.GenerateEd25519Key(nil)
	anns := chain(t, key, "served", 6, "a")
	tracker := anns[0].Payload.Tracker
	other := chain(t, key, "elsewhere", 1, "a")[0]
	tampered := append([]byte(nil), anns[4].Raw()...)
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct {
		name string
		envs [][]byte
	}{
		{"tampered", [][]byte{anns[3].Raw(), tampered, anns[5].Raw()}},
		{"other tracker", [][]byte{anns[3].Raw(), other.Raw()}},
		{"below the head", [][]byte{anns[1].Raw(), anns[3].Raw()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newNetPeer(t, nil)
			appendAll(t, b.log, anns[:3]) // b holds seq 1..3
			h := newLiar(t, tracker, lyingHistory{tracker: tracker, key: key, envs: tc.envs},
				[]gossip.WireChain{{Author: anns[0].Payload.Author, Seq: 3, ID: anns[2].ID}})
			if err := b.net.Connect(context.Background(), h.addr()); err != nil {
				t.Fatal(err)
			}
			// Its score is kept from the first GossipSub stream on.
			wait.For(t, 10*time.Second, func() error {
				if _, ok := b.net.PeerScores()[h.ID().String()]; !ok {
					return errors.New("b does not score the responder yet")
				}
				return nil
			})

			last := b.log.Last()
			_, err := b.net.Fetch(context.Background(), h.ID().String(), tracker)
			if !errors.Is(err, gossip.ErrBadPeer) {
				t.Fatalf("fetch: %v, want a bad peer", err)
			}
			if b.log.Last() != last {
				t.Fatal("something of the bad batch was stored")
			}
			st := b.net.SyncStats()
			if st.Violations != 1 {
				t.Errorf("violations %d", st.Violations)
			}

			// Dropped, as the responder sees it too.
			if slices.Contains(b.net.Peers(), h.ID().String()) {
				t.Error("b is still connected to the responder")
			}
			wait.For(t, 10*time.Second, func() error {
				if c := h.Network().Connectedness(mustPeer(t, b.net.ID())); c == network.Connected {
					return errors.New("the responder still sees a connection to b")
				}
				return nil
			})
			// Below the graylist.
			wait.For(t, 10*time.Second, func() error {
				if s, ok := b.net.PeerScores()[h.ID().String()]; !ok || s >= graylist {
					return fmt.Errorf("the responder's score at b is %v (kept: %v), want below %d", s, ok, graylist)
				}
				return nil
			})
			// Not served: its inventory request is reset unanswered.
			if resp, err := h.inventory(b.net.Addrs()[0]); !errors.Is(err, network.ErrReset) || len(resp) != 0 {
				t.Errorf("the banned peer was served: %q, %v", resp, err)
			}
			// Not asked again: b would dial it (its addresses are known).
			if _, err := b.net.Fetch(context.Background(), h.ID().String(), tracker); err == nil {
				t.Error("a second fetch from the banned peer succeeded")
			}
			if n := h.served.Load(); n != 1 {
				t.Errorf("the banned peer was asked %d times", n)
			}
			if got := b.net.SyncStats().Fetches; got != st.Fetches {
				t.Errorf("%d fetches after the ban, want none", got-st.Fetches)
			}
		})
	}
}

// liar is a lying sync responder on a host of its own: the real serving
// code over a made-up history. It runs GossipSub, as any peer does, so
// that the requester keeps a score for it.
type liar struct {
	host.Host
	served atomic.Int32 // sync streams answered
}

func newLiar(t *testing.T, tracker topics.TrackerID, lies gossip.History, held []gossip.WireChain) *liar {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); h.Close() })
	if _, err := pubsub.NewGossipSub(ctx, h); err != nil {
		t.Fatal(err)
	}
	l := &liar{Host: h}
	h.SetStreamHandler(gossip.SyncProtocol, func(s network.Stream) {
		defer s.Close()
		l.served.Add(1)
		br := bufio.NewReader(s)
		n, _ := binary.ReadUvarint(br)
		br.Discard(int(n)) // the request: the requester holds held
		gossip.ServeFetch(ctx, s, lies, gossip.FetchRequest{Tracker: tracker, All: true, Chains: held}, nil)
	})
	return l
}

func (l *liar) addr() string { return l.Addrs()[0].String() + "/p2p/" + l.ID().String() }

// inventory connects to the node at addr and asks it for its heads, as
// the wire format has it (gossip/syncwire.go); it returns what came back.
func (l *liar) inventory(addr string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return nil, err
	}
	if err := l.Connect(ctx, *ai); err != nil {
		return nil, err
	}
	s, err := l.NewStream(ctx, ai.ID, gossip.SyncProtocol)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(10 * time.Second))
	req := append([]byte{'J'}, `{"type":"inventory"}`...)
	if _, err := s.Write(append(binary.AppendUvarint(nil, uint64(len(req))), req...)); err != nil {
		return nil, err
	}
	s.CloseWrite()
	return io.ReadAll(s)
}

// lyingHistory serves envs as if they were seqs 4, 5, 6… of one chain.
type lyingHistory struct {
	tracker topics.TrackerID
	key     crypto.PrivKey
	envs    [][]byte
}

func (l lyingHistory) Heads(string, int, []topics.TrackerID) ([]gossip.Head, string, error) {
	raw, _ := topics.RawPublicKey(l.key.GetPublic())
	id, _ := topics.NodeID(l.key.GetPublic())
	top := uint64(3 + len(l.envs))
	return []gossip.Head{{Tracker: l.tracker, Author: id, AuthorKey: raw, Seq: top, Max: top}}, "", nil
}

func (l lyingHistory) Chain(_ topics.TrackerID, _ []byte, from uint64, _ int) ([]gossip.ChainEnvelope, error) {
	var out []gossip.ChainEnvelope
	for i, e := range l.envs {
		if seq := uint64(4 + i); seq >= from {
			out = append(out, gossip.ChainEnvelope{Seq: seq, Envelope: e})
		}
	}
	return out, nil
}

func (l lyingHistory) AppendAll(context.Context, []*topics.Announcement) ([]topics.Outcome, error) {
	return nil, errors.New("read only")
}

// TestNewNodeCatchesUpWithFailover: a brand-new node joins a network
// holding 20,000 announcements and catches up fully; the peer serving it is
// stopped mid-transfer and it finishes from another, resuming where the
// transfer stopped.
func TestNewNodeCatchesUpWithFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: 20,000 announcements")
	}
	const total = 20000
	key, _, _ := crypto.GenerateEd25519Key(nil)
	anns := chain(t, key, "big", total, "a")
	tracker := anns[0].Payload.Tracker
	root := t.TempDir()

	// Two nodes hold the tracker, from its author (not a node of theirs:
	// nothing of it goes out live, so the new node has it by sync only).
	// The relay follows it; a only holds it. The new node asks its topic
	// peers first, so the relay serves it first: the relay is the one
	// stopped, and a is the other.
	a := startNode(t, fastConfig(filepath.Join(root, "a")))
	appendAll(t, a.Log, anns)
	relay := startNode(t, fastConfig(filepath.Join(root, "relay"), a.GossipAddr()))
	appendAll(t, relay.Log, anns)
	if err := relay.Follow(context.Background(), datadir.FollowSet{Trackers: []topics.TrackerID{tracker}}); err != nil {
		t.Fatal(err)
	}

	var (
		once    sync.Once
		stopped = make(chan int, 1) // envelopes the new node had when the relay stopped
		closed  = make(chan struct{})
	)
	t.Cleanup(func() { // before the relay's own cleanup
		once.Do(func() { close(closed) }) // never stopped: nothing to wait for
		<-closed
	})
	newCfg := fastConfig(filepath.Join(root, "new"), relay.GossipAddr())
	newCfg.Follow = datadir.FollowSet{Trackers: []topics.TrackerID{tracker}}
	// Anti-entropy would finish the transfer too, a minute later: out of
	// the test's way, only the sync's failover can.
	newCfg.AntiEntropyInterval = time.Hour
	newCfg.OnProgress = func(_ topics.TrackerID, r gossip.FetchResult) {
		if r.Received < total/4 {
			return
		}
		once.Do(func() {
			stopped <- r.Received
			go func() { // mid-transfer: streams reset
				defer close(closed)
				relay.net.Close()
			}()
		})
	}
	n := startNode(t, newCfg)
	waitGrowing(t, time.Minute, 5*time.Minute, func() (int, error) {
		hs, _ := n.Log.TrackerHeads(tracker)
		if len(hs) == 0 || hs[0].Seq != total || len(hs[0].Gaps) != 0 {
			return int(n.Log.Last()), fmt.Errorf("new node holds %v", hs)
		}
		// Heads show what is applied; entries, what is also durable.
		if st := n.Log.Stats(); st.Entries != total {
			return int(st.Entries), fmt.Errorf("new node holds %d durable entries", st.Entries)
		}
		return total, nil
	})
	var had int
	select {
	case had = <-stopped:
	default:
		t.Fatal("the relay was not stopped mid-transfer")
	}
	st := n.net.SyncStats()
	if st.FetchFailures == 0 {
		t.Errorf("no fetch was cut off when the relay stopped (it had sent %d): %+v", had, st)
	}
	if st.Received != total || st.Stored != total {
		t.Errorf("received %d, stored %d by sync: want each of the %d once (the fetch from a resumes, not restarts)", st.Received, st.Stored, total)
	}
	// a counts what it served once its response is over.
	wait.For(t, 10*time.Second, func() error {
		if a.net.SyncStats().Served == 0 {
			return errors.New("a served nothing: the new node did not finish from it")
		}
		return nil
	})
	t.Logf("the relay stopped after %d envelopes; the new node finished from a", had)
}

// waitGrowing waits until cond returns nil, failing t if the count cond
// reports does not grow for stall (a loaded machine is slow, but makes
// progress) or if it all takes longer than limit.
func waitGrowing(t testing.TB, stall, limit time.Duration, cond func() (int, error)) {
	t.Helper()
	start := time.Now()
	last, lastAt := -1, start
	for {
		n, err := cond()
		if err == nil {
			return
		}
		now := time.Now()
		if n != last {
			last, lastAt = n, now
		}
		if now.Sub(lastAt) > stall {
			t.Fatalf("no progress for %v (at %d): %v", stall, last, err)
		}
		if now.Sub(start) > limit {
			t.Fatalf("after %v: %v", limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFollowNode: following a node follows a tracker it creates later, and
// brings its history.
func TestFollowNode(t *testing.T) {
	root := t.TempDir()
	a := startNode(t, fastConfig(filepath.Join(root, "a")))
	cfg := fastConfig(filepath.Join(root, "f"), a.GossipAddr())
	cfg.Follow = datadir.FollowSet{Nodes: []string{a.ID.ID}}
	f := startNode(t, cfg)

	tr, err := a.CreateTracker(context.Background(), topics.TrackerInfo{Name: "later"}, false)
	if err != nil {
		t.Fatal(err)
	}
	things := make([]topics.Thing, 50)
	for i := range things {
		things[i] = topics.Thing{ID: fmt.Sprint(i), Title: "T", Version: "1"}
	}
	if _, err := a.Publish(context.Background(), tr.ID, things); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 20*time.Second, func() error {
		hs, _ := f.Log.TrackerHeads(tr.ID)
		if len(hs) == 0 || hs[0].Seq != 51 || len(hs[0].Gaps) != 0 {
			return fmt.Errorf("follower holds %v of the new tracker", hs)
		}
		return nil
	})
	if !f.Followed(tr.ID) {
		t.Error("the follower does not count the tracker as followed")
	}
	// Unfollowing the node lets its trackers go.
	if err := f.Unfollow(context.Background(), datadir.FollowSet{Nodes: []string{a.ID.ID}}); err != nil {
		t.Fatal(err)
	}
	if f.Followed(tr.ID) {
		t.Error("still following the node's tracker after unfollowing the node")
	}
}

// TestOverQuotaNotFetchedAgain: once a tracker's quota refused what a peer
// holds more of, comparing heads with that peer schedules no new fetch:
// each would be refused again.
func TestOverQuotaNotFetchedAgain(t *testing.T) {
	var anns []*topics.Announcement
	c, b := holderAndFollower(t, 5, func(cfg *Config, held []*topics.Announcement) {
		anns = held
		cfg.TrackerQuota = int64(len(held[0].Raw()) + len(held[1].Raw()))
	})
	tracker := anns[0].Payload.Tracker
	author, err := topics.NodeID(c.key.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	heads := []gossip.WireHead{{Tracker: tracker, Author: author, Seq: 5, ID: anns[4].ID}}
	b.learn(heads, nil) // c is ahead: fetch
	wait.For(t, 10*time.Second, func() error {
		if !b.Log.OverQuota(tracker, anns[0].Env.RawKey) || b.syncQ.pending() != 0 {
			return fmt.Errorf("the fetch is not over: %d pending, head %+v", b.syncQ.pending(), head(t, b, tracker))
		}
		return nil
	})
	if h := head(t, b, tracker); h.Seq != 2 {
		t.Fatalf("b holds up to seq %d, want 2 (its quota)", h.Seq)
	}
	b.learn(heads, nil) // c is still ahead, but b would refuse it
	if p := b.syncQ.pending(); p != 0 {
		t.Fatalf("%d syncs scheduled for a tracker over its quota", p)
	}
}

func head(t *testing.T, n *Node, tracker topics.TrackerID) feed.Head {
	t.Helper()
	hs, err := n.Log.TrackerHeads(tracker)
	if err != nil || len(hs) != 1 {
		return feed.Head{}
	}
	return hs[0]
}

// TestDiskFullPostponesSync: on a full disk a sync job is put off, its tries
// unspent, and no peer is asked for what could not be stored.
func TestDiskFullPostponesSync(t *testing.T) {
	var tracker topics.TrackerID
	_, b := holderAndFollower(t, 3, func(cfg *Config, held []*topics.Announcement) {
		tracker = held[0].Payload.Tracker
		cfg.MinFree = 1 << 62 // more than any disk has
	})
	wait.For(t, 10*time.Second, func() error {
		q := b.syncQ
		q.mu.Lock()
		defer q.mu.Unlock()
		j := q.jobs[tracker]
		if j == nil || q.busy[tracker] || !j.next.After(time.Now()) {
			return errors.New("the sync job has not been put off yet")
		}
		if j.tries != 0 {
			return fmt.Errorf("the job spent %d tries", j.tries)
		}
		return nil
	})
	if st := b.net.SyncStats(); st.Fetches != 0 || st.FetchFailures != 0 {
		t.Fatalf("peers were asked on a full disk: %+v", st)
	}
}

// holderAndFollower starts a network peer holding a chain of n on a tracker
// of its own, and a node, configured by tweak, that follows the tracker and
// is connected to the peer.
func holderAndFollower(t *testing.T, n int, tweak func(*Config, []*topics.Announcement)) (*netPeer, *Node) {
	t.Helper()
	c := newNetPeer(t, nil)
	anns := chain(t, c.key, "held", n, "a")
	appendAll(t, c.log, anns)
	cfg := fastConfig(filepath.Join(t.TempDir(), "b"))
	tweak(&cfg, anns)
	b := startNode(t, cfg)
	if err := b.Follow(context.Background(), datadir.FollowSet{Trackers: []topics.TrackerID{anns[0].Payload.Tracker}}); err != nil {
		t.Fatal(err)
	}
	if err := c.net.Connect(context.Background(), b.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	return c, b
}

// mustPeer decodes a node ID into libp2p's peer ID.
func mustPeer(t *testing.T, id string) peer.ID {
	t.Helper()
	p, err := peer.Decode(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
