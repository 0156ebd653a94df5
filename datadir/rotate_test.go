package datadir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
)

// TestRotate: a rotation to the committed recovery key keeps the node ID
// and its trackers and signs on with the new key, across a reopen; a wrong
// phrase, a spent one and a node without a commitment are refused and
// change nothing.
func TestRotate(t *testing.T) {
	ctx := context.Background()
	c := openDir(t)
	id, inceptionKey := c.ID.ID, c.ID.Key
	phrase, commitment, err := NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := RecoveryKey(phrase)
	wrongPhrase, _, _ := NewRecoveryPhrase()
	wrong, _ := RecoveryKey(wrongPhrase)
	_, next, _ := NewRecoveryPhrase()

	if _, err := c.Rotate(ctx, key, next, topics.ReasonCompromised); !errors.Is(err, ErrNoCommitment) {
		t.Fatalf("rotating without a commitment: %v", err)
	}
	if _, err := c.Commit(ctx, commitment); err != nil {
		t.Fatal(err)
	}
	tr, err := c.CreateTracker(ctx, topics.TrackerInfo{Name: "designs"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, tr.ID, []topics.Thing{{ID: "a", Title: "before", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	entries := c.Log.Last()
	for _, err := range []error{
		func() error { _, err := c.Rotate(ctx, wrong, next, topics.ReasonCompromised); return err }(),
	} {
		if !errors.Is(err, ErrWrongPhrase) || strings.Contains(err.Error(), "\n") {
			t.Errorf("a wrong phrase: %v", err)
		}
	}
	if c.Log.Last() != entries || !c.ID.Signer().Equals(inceptionKey) {
		t.Fatal("a refused rotation changed the log or the key")
	}
	if _, err := os.Stat(filepath.Join(c.Path, nextKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused rotation left %s: %v", nextKeyFile, err)
	}

	r, err := c.Rotate(ctx, key, next, topics.ReasonCompromised)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Heads) != 2 { // the node tracker and designs
		t.Errorf("the rotation vouches for %v", r.Heads)
	}
	if !c.ID.Signer().Equals(key) || c.ID.ID != id {
		t.Fatalf("after the rotation: node %s", c.ID.ID)
	}
	ps, err := c.Publish(ctx, tr.ID, []topics.Thing{{ID: "b", Title: "after", Version: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Log.Announcement(ps[0].Cursor)
	if err != nil || !a.Rotated() || a.Payload.Author != id {
		t.Fatalf("published after the rotation: %+v %v", a, err)
	}
	if _, err := c.Rotate(ctx, key, next, topics.ReasonRoutine); !errors.Is(err, ErrSpentPhrase) {
		t.Errorf("the spent phrase again: %v", err)
	}

	// Reopened: the same node, signing with the new key.
	c.Close()
	c, err = Open(c.Path, feed.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ID.ID != id || c.ID.RawKey == nil || !c.ID.Signer().Equals(key) || c.ID.NodeTracker() != topics.DeriveTrackerID(c.ID.RawKey, "") {
		t.Fatalf("reopened: node %s", c.ID.ID)
	}
	if _, err := c.Publish(ctx, tr.ID, []topics.Thing{{ID: "c", Title: "later", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	if got := c.Log.KeyState(c.ID.RawKey); got.Rotations != 1 || got.Commitment != next {
		t.Errorf("key state: %+v", got)
	}
}
