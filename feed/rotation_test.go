package feed

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/topics"
)

// rotationCase is an owner whose signing key was stolen: the owner's
// honest entries, the thief's, and the owner's rotation to its committed
// recovery key.
type rotationCase struct {
	owner, recovery, next, thief *author
	id                           string // the owner's node ID
	designs, nodeTracker         topics.TrackerID

	honest []*topics.Announcement // node record (seq 1), designs 1..3
	stolen []*topics.Announcement // with the owner's key: designs 4, 5 and a node record (seq 2) committing to the thief's key
	rotate *topics.Announcement   // by the recovery key, vouching for node tracker 1 and designs 3
}

func newRotationCase(t *testing.T) *rotationCase {
	c := &rotationCase{owner: newAuthor(t, 1), recovery: newAuthor(t, 2), next: newAuthor(t, 3), thief: newAuthor(t, 4)}
	c.id = c.owner.nodeID()
	c.designs, c.nodeTracker = c.owner.tracker("designs"), c.owner.tracker("")
	node := func(k crypto.PrivKey, seq uint64, prev topics.ID, next string) *topics.Announcement {
		a, err := topics.SignAs(k, c.id, &topics.Payload{V: 1, Kind: topics.KindNode, Tracker: c.nodeTracker, Seq: seq, Prev: prev,
			Time: topics.FormatTime(testTime), NodeInfo: &topics.NodeInfo{Next: next}})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	inception := node(c.owner.key, 1, topics.ID{}, topics.Commitment(c.recovery.raw))
	designs := c.owner.chain(c.designs, 5, "")
	c.honest = append([]*topics.Announcement{inception}, designs[:3]...)
	c.stolen = append(designs[3:], node(c.owner.key, 2, inception.ID, topics.Commitment(c.thief.raw)))
	c.rotate = c.rotation(t, c.recovery, 2, inception.ID, topics.Commitment(c.next.raw),
		[]topics.RotateHead{{Tracker: c.nodeTracker, Seq: 1, ID: inception.ID}, {Tracker: c.designs, Seq: 3, ID: designs[2].ID}})
	return c
}

// rotation signs a rotate record of the owner with key.
func (c *rotationCase) rotation(t *testing.T, key *author, seq uint64, prev topics.ID, next string, heads []topics.RotateHead) *topics.Announcement {
	pub, err := crypto.MarshalPublicKey(key.key.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	a, err := topics.SignAs(key.key, c.id, &topics.Payload{V: 1, Kind: topics.KindRotate, Tracker: c.nodeTracker, Seq: seq, Prev: prev,
		Time: topics.FormatTime(testTime), Rotate: &topics.Rotate{Key: pub, Next: next, Heads: heads, Reason: topics.ReasonCompromised}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// things returns the IDs of the designs Things the log shows.
func things(t *testing.T, l *Log, tracker topics.TrackerID) map[string]bool {
	t.Helper()
	ts, err := l.Things(tracker)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]bool)
	for _, s := range ts {
		out[s.Thing] = true
	}
	return out
}

// TestRotationVoidsTheThief: a log that stored a thief's entries voids
// them when the owner rotates, refuses more of them, places the owner's
// new key, and keeps all of it across a reopen.
func TestRotationVoidsTheThief(t *testing.T) {
	c := newRotationCase(t)
	dir := filepath.Join(t.TempDir(), "log")
	l, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	for _, a := range append(append([]*topics.Announcement{}, c.honest...), c.stolen...) {
		mustAppend(t, l, a, Stored)
	}
	if got := things(t, l, c.designs); len(got) != 5 {
		t.Fatalf("before the rotation the log shows %d Things, want the 5 held", len(got))
	}
	// The thief cannot rotate: its key is not the one committed to (the
	// commitment in force is the lowest-seq node record's).
	mustAppend(t, l, c.rotation(t, c.thief, 3, c.stolen[2].ID, "", nil), Refused)

	mustAppend(t, l, c.rotate, Stored)
	ks := l.KeyState(c.owner.raw)
	if string(ks.Current) != string(c.recovery.raw) || ks.Rotations != 1 || ks.Commitment != topics.Commitment(c.next.raw) || ks.Void != 3 {
		t.Errorf("key state after the rotation: %+v", ks)
	}
	if got := things(t, l, c.designs); len(got) != 3 || got["t4"] || got["t5"] {
		t.Errorf("after the rotation the log shows %v, want t1..t3", got)
	}
	// The node's latest node record is the owner's again, not the thief's.
	if st, err := l.Tracker(c.nodeTracker); err != nil || st.Info == nil || st.Info.ID != c.honest[0].ID {
		t.Errorf("the node tracker's latest node record: %+v %v", st, err)
	}
	// More of the thief's: void, not stored.
	more := c.owner.sign(c.designs, 6, c.stolen[1].ID, &topics.Thing{ID: "t6", Title: "stolen", Version: "1"})
	mustAppend(t, l, more, Void)
	// The owner publishes on with the recovery key: the chain continues
	// past the heads, under the same tracker ID.
	pubs, err := l.Publish(context.Background(), c.recovery.key, []Draft{{Tracker: c.designs, Kind: topics.KindThing,
		Thing: &topics.Thing{ID: "t4", Title: "honest again", Version: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if pubs[0].Seq != 4 {
		t.Errorf("the owner's next entry took seq %d, want 4", pubs[0].Seq)
	}
	if st, err := l.Thing(c.designs, "t4"); err != nil || st.Latest().Latest().ID != pubs[0].ID {
		t.Errorf("the owner's new entry: %+v, %v", st, err)
	}
	// The void entries are evidence in the arrival order, and no reader
	// sees them.
	es, err := l.Entries(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	voids := 0
	for _, e := range es {
		if e.Void {
			voids++
		}
	}
	if voids != 3 {
		t.Errorf("%d void entries among %d, want 3", voids, len(es))
	}
	r := l.NewReader(0)
	for range len(es) - voids {
		e, err := r.Next(context.Background())
		if err != nil || e.Void {
			t.Fatalf("reader: %+v, %v", e, err)
		}
	}

	// Reopened: the key state holds.
	l.Close()
	if l, err = Open(dir, Config{}); err != nil {
		t.Fatal(err)
	}
	if got := l.KeyState(c.owner.raw); string(got.Current) != string(c.recovery.raw) || got.Rotations != 1 {
		t.Errorf("reopened key state: %+v", got)
	}
	mustAppend(t, l, c.owner.sign(c.designs, 5, pubs[0].ID, &topics.Thing{ID: "t7", Title: "stolen", Version: "1"}), Void)
	// The spent recovery key cannot rotate again: the next commitment is
	// to another key.
	mustAppend(t, l, c.rotation(t, c.recovery, 3, c.rotate.ID, topics.Commitment(c.thief.raw), nil), Refused)
}

// TestRotationLateJoiner: a log that never held the thief's entries
// refuses them once it holds the rotation, whatever the order it learns
// things in; a rotation it cannot check yet is Unplaced.
func TestRotationLateJoiner(t *testing.T) {
	c := newRotationCase(t)
	l := openDisk(t)
	// The rotation before the commitment: unplaced, and so is an entry by
	// the new key.
	mustAppend(t, l, c.rotate, Unplaced)
	for _, a := range c.honest {
		mustAppend(t, l, a, Stored)
	}
	mustAppend(t, l, c.rotate, Stored)
	for _, a := range c.stolen {
		mustAppend(t, l, a, Void)
	}
	if got := things(t, l, c.designs); len(got) != 3 {
		t.Errorf("the late joiner shows %v, want t1..t3", got)
	}
	if st := l.Stats(); st.Void != 3 || st.Unplaced != 1 {
		t.Errorf("stats: %+v", st)
	}
}

// TestCommitmentsRecomputed: a log written before key states were kept
// finds the commitments in force in its node records when it opens.
func TestCommitmentsRecomputed(t *testing.T) {
	c := newRotationCase(t)
	dir := filepath.Join(t.TempDir(), "log")
	l, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range c.honest {
		mustAppend(t, l, a, Stored)
	}
	// What an older version wrote: no key states, no mark.
	l = reopenWithout(t, l, dir, keyStateKey(c.owner.raw), keyStatesKept)
	if got := l.KeyState(c.owner.raw).Commitment; got != topics.Commitment(c.recovery.raw) {
		t.Fatalf("commitment after reopening: %q", got)
	}
	mustAppend(t, l, c.rotate, Stored)
}

// TestRetire: a rotation committing to no next key ends the identity:
// nothing its keys sign is placed after it, and no rotation either.
func TestRetire(t *testing.T) {
	c := newRotationCase(t)
	l := openDisk(t)
	for _, a := range c.honest {
		mustAppend(t, l, a, Stored)
	}
	retire := c.rotation(t, c.recovery, 2, c.honest[0].ID, "", c.rotate.Payload.Rotate.Heads)
	mustAppend(t, l, retire, Stored)
	if ks := l.KeyState(c.owner.raw); !ks.Retired {
		t.Fatalf("key state after retiring: %+v", ks)
	}
	_, err := l.Publish(context.Background(), c.recovery.key, []Draft{{Tracker: c.designs, Kind: topics.KindThing,
		Thing: &topics.Thing{ID: "t9", Title: "after the end", Version: "1"}}})
	if !errors.Is(err, ErrRetired) {
		t.Errorf("publishing after retiring: %v", err)
	}
	mustAppend(t, l, c.stolen[0], Void)
	mustAppend(t, l, c.rotation(t, c.next, 3, retire.ID, "", nil), Refused)
}

// TestThiefCommitmentOnAGap: a log that holds the thief's committing node
// record but not the owner's earlier one does not let the thief rotate:
// the rotate is unplaced until the records below are held, and then the
// owner's commitment, the first, is in force.
func TestThiefCommitmentOnAGap(t *testing.T) {
	c := newRotationCase(t)
	l := openDisk(t)
	thiefRecord := c.stolen[2] // node tracker seq 2, committing to the thief's key
	mustAppend(t, l, thiefRecord, Stored)
	takeover := c.rotation(t, c.thief, 3, thiefRecord.ID, "", nil)
	mustAppend(t, l, takeover, Unplaced)
	mustAppend(t, l, c.honest[0], Stored) // the owner's inception record, seq 1
	if got := l.KeyState(c.owner.raw).Commitment; got != topics.Commitment(c.recovery.raw) {
		t.Fatalf("commitment in force: %q, want the owner's", got)
	}
	mustAppend(t, l, takeover, Refused)
}

// TestRotationForkAtHead: the owner and the thief both signed seq 4. A
// rotation naming the owner's seq 4 as the head voids the thief's and
// unfreezes the chain, whichever of the two the log holds, and in which
// order.
func TestRotationForkAtHead(t *testing.T) {
	c := newRotationCase(t)
	designs := c.honest[1:]
	prev := designs[2].ID
	owners := c.owner.sign(c.designs, 4, prev, &topics.Thing{ID: "owner-4", Title: "mine", Version: "1"})
	thiefs := c.owner.sign(c.designs, 4, prev, &topics.Thing{ID: "thief-4", Title: "stolen", Version: "1"})
	rotate := c.rotation(t, c.recovery, 2, c.honest[0].ID, topics.Commitment(c.next.raw),
		[]topics.RotateHead{{Tracker: c.nodeTracker, Seq: 1, ID: c.honest[0].ID}, {Tracker: c.designs, Seq: 4, ID: owners.ID}})
	for name, held := range map[string][]*topics.Announcement{
		"thief's first, then the owner's (a fork)": {thiefs, owners},
		"owner's first, then the thief's (a fork)": {owners, thiefs},
		"the thief's alone":                        {thiefs},
	} {
		t.Run(name, func(t *testing.T) {
			l := openDisk(t)
			for _, a := range c.honest {
				mustAppend(t, l, a, Stored)
			}
			mustAppend(t, l, held[0], Stored)
			if len(held) > 1 {
				mustAppend(t, l, held[1], Forked)
			}
			mustAppend(t, l, rotate, Stored)
			if len(held) == 1 {
				mustAppend(t, l, owners, Stored) // the head, now placed
			}
			hs, err := l.TrackerHeads(c.designs)
			if err != nil || len(hs) != 1 || hs[0].Fork != nil || hs[0].Seq != 4 || hs[0].ID != owners.ID {
				t.Fatalf("designs after the rotation: %+v %v", hs, err)
			}
			if got := things(t, l, c.designs); !got["owner-4"] || got["thief-4"] {
				t.Errorf("the log shows %v", got)
			}
			ps, err := l.Publish(context.Background(), c.recovery.key, []Draft{{Tracker: c.designs, Kind: topics.KindThing,
				Thing: &topics.Thing{ID: "t5", Title: "on", Version: "1"}}})
			if err != nil || ps[0].Seq != 5 {
				t.Errorf("publishing on: %+v %v", ps, err)
			}
			es, err := l.Entries(0, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				if e.ID == thiefs.ID != e.Void {
					t.Errorf("entry %s (seq %d): void %v", e.ID, e.Seq, e.Void)
				}
			}
		})
	}
}

// openDisk opens a log in a new temporary dir, closed when the test ends.
func openDisk(t *testing.T) *Log {
	t.Helper()
	l, err := Open(filepath.Join(t.TempDir(), "log"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// reopenWithout deletes keys from the log in dir, as a version that did not
// write them would have left it, and opens it again until the test ends.
func reopenWithout(t *testing.T, l *Log, dir string, keys ...[]byte) *Log {
	t.Helper()
	for _, k := range keys {
		if err := l.db.Delete(k, nil); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	l, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}
