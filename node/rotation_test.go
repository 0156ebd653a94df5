package node

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// TestCompromiseDrill is DESIGN's "Key rotation" end to end, on real nodes
// over loopback: owner O's signing key is stolen; the thief publishes two
// Things on O's tracker and a node record committing to a key of its own,
// and follower F1 takes them. O rotates to its recovery key, vouching for
// its own heads, and publishes on. Then, on F1 (following O), F2 (following
// the tracker) and F3 (offline throughout, joining after): the thief's
// entries are void and out of every view, O's new entry is shown, the
// tracker ID is the same, nobody changed their follows, the thief's
// commitment never was in force, and the stolen key publishes nothing
// more.
func TestCompromiseDrill(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	o, tr, phrase := committedOwner(t, root)
	for i := range 3 {
		if _, err := o.Publish(ctx, tr.ID, []topics.Thing{{ID: fmt.Sprint("honest-", i), Title: "Honest", Version: "1"}}); err != nil {
			t.Fatal(err)
		}
	}
	f1cfg := fastConfig(filepath.Join(root, "f1"), o.GossipAddr())
	f1cfg.Follow = datadir.FollowSet{Nodes: []string{o.ID.ID}}
	// A follower may first sync from the thief, who serves its own view:
	// the network converges by anti-entropy, which compares with a random
	// peer (every minute by default), the owners' node trackers included.
	f1cfg.AntiEntropyInterval = time.Second
	f1 := startNode(t, f1cfg)
	f2cfg := fastConfig(filepath.Join(root, "f2"), o.GossipAddr())
	f2cfg.Follow = datadir.FollowSet{Trackers: []topics.TrackerID{tr.ID}}
	f2cfg.AntiEntropyInterval = time.Second
	f2 := startNode(t, f2cfg)
	honest := []string{"honest-0", "honest-1", "honest-2"}
	for _, f := range []*Node{f1, f2} {
		waitThings(t, f, tr.ID, honest)
	}

	// The thief: its own network node, O's key (a copy of the key file),
	// O's heads (public).
	thief := newNetPeer(t, nil)
	if err := thief.net.Connect(ctx, f1.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	stolen := o.ID.Key
	nodeTracker := o.ID.NodeTracker()
	head := func(tracker topics.TrackerID) (uint64, topics.ID) {
		hs, err := o.Log.TrackerHeads(tracker)
		if err != nil || len(hs) != 1 {
			t.Fatalf("O's heads on %s: %v %v", tracker, hs, err)
		}
		return hs[0].Seq, hs[0].ID
	}
	thiefKey, _, _ := crypto.GenerateEd25519Key(nil)
	thiefRaw, _ := topics.RawPublicKey(thiefKey.GetPublic())
	seq, prev := head(tr.ID)
	nseq, nprev := head(nodeTracker)
	var forged []*topics.Announcement
	for i := range 2 {
		a, err := topics.Sign(stolen, &topics.Payload{V: 1, Kind: topics.KindThing, Tracker: tr.ID, Seq: seq + uint64(i) + 1, Prev: prev,
			Time: topics.FormatTime(time.Now()), Thing: &topics.Thing{ID: fmt.Sprint("stolen-", i), Title: "Malware", Version: "1"}})
		if err != nil {
			t.Fatal(err)
		}
		forged, prev = append(forged, a), a.ID
	}
	record, err := topics.Sign(stolen, &topics.Payload{V: 1, Kind: topics.KindNode, Tracker: nodeTracker, Seq: nseq + 1, Prev: nprev,
		Time: topics.FormatTime(time.Now()), NodeInfo: &topics.NodeInfo{Trackers: []topics.TrackerID{tr.ID}, Next: topics.Commitment(thiefRaw)}})
	if err != nil {
		t.Fatal(err)
	}
	forged = append(forged, record)
	for _, tt := range []topics.TrackerID{tr.ID, nodeTracker} {
		if err := thief.net.Follow(tt); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, func() error {
		if thief.net.TopicPeers(tr.ID) == 0 || thief.net.TopicPeers(nodeTracker) == 0 {
			return fmt.Errorf("F1 is not on the thief's topics yet")
		}
		return nil
	})
	for _, a := range forged {
		if _, err := thief.log.Append(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := thief.net.Publish(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	waitThings(t, f1, tr.ID, append(slices.Clone(honest), "stolen-0", "stolen-1"))
	wait.For(t, 10*time.Second, func() error {
		if c, _ := f1.Log.Lookup(record.ID); c == 0 {
			return fmt.Errorf("F1 does not hold the thief's node record")
		}
		return nil
	})

	// O rotates and publishes on.
	key, err := datadir.RecoveryKey(phrase)
	if err != nil {
		t.Fatal(err)
	}
	_, next, _ := datadir.NewRecoveryPhrase()
	if _, err := o.Rotate(ctx, key, next, topics.ReasonCompromised); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Publish(ctx, tr.ID, []topics.Thing{{ID: "after", Title: "Honest again", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(honest), "after")
	f3cfg := fastConfig(filepath.Join(root, "f3"), f1.GossipAddr())
	f3cfg.Follow = datadir.FollowSet{Trackers: []topics.TrackerID{tr.ID}}
	f3cfg.AntiEntropyInterval = time.Second
	f3 := startNode(t, f3cfg)
	keyRaw, _ := topics.RawPublicKey(key.GetPublic())
	for name, f := range map[string]*Node{"O": o, "F1": f1, "F2": f2, "F3": f3} {
		waitThings(t, f, tr.ID, want)
		ks := f.Log.KeyState(o.ID.RawKey)
		if string(ks.Current) != string(keyRaw) || ks.Commitment != next {
			t.Errorf("%s: O's key state %+v: want the recovery key current and O's next commitment", name, ks)
		}
	}
	if got := f1.Log.KeyState(o.ID.RawKey).Void; got != 3 {
		t.Errorf("F1 voided %d of the thief's entries, want 3", got)
	}
	// The search index drops the voided Things too.
	wait.For(t, 10*time.Second, func() error {
		res, err := f1.Search(ctx, view.SearchQuery{Text: "malware"})
		if err != nil || res.Total != 0 || res.Behind != 0 {
			return fmt.Errorf("F1's search for the thief's Things: %+v %v", res, err)
		}
		return nil
	})
	if st, err := f1.NodeDetail(ctx, o.ID.ID); err != nil || st.Key == nil || st.Key.Rotations != 1 || st.Commitment != next {
		t.Errorf("F1's view of O: %+v %v", st, err)
	}
	for _, f := range []*Node{f1, f2, f3} {
		if fs := f.follows.Get(); !slices.Equal(fs.Trackers, f.cfg.Follow.Trackers) || !slices.Equal(fs.Nodes, f.cfg.Follow.Nodes) {
			t.Errorf("follows changed: %+v", fs)
		}
	}

	// The stolen key publishes nothing more.
	void := f1.Log.Stats().Void
	more, err := topics.Sign(stolen, &topics.Payload{V: 1, Kind: topics.KindThing, Tracker: tr.ID, Seq: seq + 3, Prev: prev,
		Time: topics.FormatTime(time.Now()), Thing: &topics.Thing{ID: "stolen-2", Title: "Malware", Version: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := thief.log.Append(ctx, more); err != nil {
		t.Fatal(err)
	}
	if err := thief.net.Publish(ctx, more); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if f1.Log.Stats().Void == void {
			return fmt.Errorf("F1 has not refused the stolen key's new entry")
		}
		return nil
	})
	waitThings(t, f1, tr.ID, want)
}

// waitThings waits until n shows exactly the Things ids on tracker.
func waitThings(t *testing.T, n *Node, tracker topics.TrackerID, ids []string) {
	t.Helper()
	want := slices.Sorted(slices.Values(ids))
	wait.For(t, 20*time.Second, func() error {
		ts, err := n.Log.Things(tracker)
		if err != nil {
			return err
		}
		var got []string
		for _, s := range ts {
			got = append(got, s.Thing)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s shows %v, want %v", n.ID.ID, got, want)
		}
		return nil
	})
}

// TestLostKey: O's data dir is gone. A new dir made from O's node ID and
// recovery phrase learns O's chains from its peers, rotates to the recovery
// key, and continues O's tracker; O's follower takes the new entries.
func TestLostKey(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	o, tr, phrase := committedOwner(t, root)
	if _, err := o.Publish(ctx, tr.ID, []topics.Thing{{ID: "before", Title: "Before", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	fcfg := fastConfig(filepath.Join(root, "f"), o.GossipAddr())
	fcfg.Follow = datadir.FollowSet{Nodes: []string{o.ID.ID}}
	f := startNode(t, fcfg)
	waitThings(t, f, tr.ID, []string{"before"})
	id := o.ID.ID
	o.Close()

	key, err := datadir.RecoveryKey(phrase)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "o-again")
	if _, err := datadir.InitRecovered(dir, id, key); err != nil {
		t.Fatal(err)
	}
	o2 := startNode(t, fastConfig(dir, f.GossipAddr()))
	if o2.ID.ID != id {
		t.Fatalf("the recovered node is %s, want %s", o2.ID.ID, id)
	}
	_, next, _ := datadir.NewRecoveryPhrase()
	if _, err := (controlHandler{o2}).Rotate(ctx, key, next, topics.ReasonLost); err != nil {
		t.Fatal(err)
	}
	if _, err := o2.Publish(ctx, tr.ID, []topics.Thing{{ID: "after", Title: "After", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	waitThings(t, f, tr.ID, []string{"before", "after"})
	if ks := f.Log.KeyState(o2.ID.RawKey); ks.Rotations != 1 || ks.Void != 0 {
		t.Errorf("the follower's key state of O: %+v", ks)
	}
}

// committedOwner starts owner O in root/o, committed to a recovery key,
// with a tracker "designs"; it returns O, the tracker and the phrase.
func committedOwner(t *testing.T, root string) (*Node, datadir.TrackerResult, string) {
	t.Helper()
	o := startNode(t, fastConfig(filepath.Join(root, "o")))
	phrase, commitment, err := datadir.NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Commit(context.Background(), commitment); err != nil {
		t.Fatal(err)
	}
	tr, err := o.CreateTracker(context.Background(), topics.TrackerInfo{Name: "designs"}, false)
	if err != nil {
		t.Fatal(err)
	}
	return o, tr, phrase
}
