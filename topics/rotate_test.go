package topics

import (
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// TestRotated: an announcement signed by a key other than its author's is
// marked Rotated, and names its chains by the author's inception key.
func TestRotated(t *testing.T) {
	inception, next := testKey(t, 1), testKey(t, 2)
	author, _ := NodeID(inception.GetPublic())
	designs := DeriveTrackerID(rawPub(t, inception), "designs")
	own, err := Sign(inception, thingPayload(t, inception, 1))
	if err != nil {
		t.Fatal(err)
	}
	if own.Rotated() || string(own.AuthorKey) != string(rawPub(t, inception)) {
		t.Errorf("an announcement signed by its author's inception key is marked rotated")
	}
	rotated, err := SignAs(next, author, thingPayload(t, inception, 2))
	if err != nil {
		t.Fatal(err)
	}
	if !rotated.Rotated() || string(rotated.AuthorKey) != string(rawPub(t, inception)) || rotated.Payload.Tracker != designs {
		t.Errorf("an announcement signed by a later key: rotated %v, author key %x", rotated.Rotated(), rotated.AuthorKey)
	}
	// The tracker must still be the author's, not the signer's.
	p := thingPayload(t, next, 1)
	if _, err := SignAs(next, author, p); OutcomeOf(err) != Reject || !strings.Contains(err.Error(), "not owned") {
		t.Errorf("a tracker of the signer's own key under another author: %v", err)
	}
}

// TestRotateRecord: the rotate body's checks, and what it must say of its
// signer.
func TestRotateRecord(t *testing.T) {
	inception, next, stranger := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	author, _ := NodeID(inception.GetPublic())
	nodeTracker := DeriveTrackerID(rawPub(t, inception), "")
	keyOf := func(k crypto.PrivKey) []byte {
		b, err := crypto.MarshalPublicKey(k.GetPublic())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	head := RotateHead{Tracker: nodeTracker, Seq: 3, ID: IDOf([]byte("head"))}
	rotate := func(r Rotate) *Payload {
		return &Payload{V: 1, Kind: KindRotate, Tracker: nodeTracker, Seq: 4, Prev: head.ID, Time: FormatTime(testNow), Rotate: &r}
	}
	valid := Rotate{Key: keyOf(next), Next: Commitment(rawPub(t, stranger)), Heads: []RotateHead{head}, Reason: ReasonCompromised}
	if _, err := SignAs(next, author, rotate(valid)); err != nil {
		t.Fatalf("a valid rotate: %v", err)
	}
	retire := valid
	retire.Next = ""
	if _, err := SignAs(next, author, rotate(retire)); err != nil {
		t.Fatalf("a rotate that retires: %v", err)
	}
	for _, tc := range []struct {
		name   string
		signer crypto.PrivKey
		edit   func(*Rotate)
		why    string
	}{
		{"signed by another key", stranger, func(*Rotate) {}, "other than its signer"},
		{"signed by the inception key", inception, func(r *Rotate) { r.Key = keyOf(inception) }, "inception key"},
		{"not a key", next, func(r *Rotate) { r.Key = []byte("nope") }, "rotate.key"},
		{"bad next", next, func(r *Rotate) { r.Next = "ABC" }, "rotate.next"},
		{"bad reason", next, func(r *Rotate) { r.Reason = "bored" }, "rotate.reason"},
		{"head twice", next, func(r *Rotate) { r.Heads = []RotateHead{head, head} }, "named twice"},
		{"head without id", next, func(r *Rotate) { r.Heads = []RotateHead{{Tracker: nodeTracker, Seq: 1}} }, "id"},
		{"head seq 0", next, func(r *Rotate) { r.Heads = []RotateHead{{Tracker: nodeTracker, ID: head.ID}} }, "seq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := valid
			r.Heads = append([]RotateHead(nil), valid.Heads...)
			tc.edit(&r)
			_, err := SignAs(tc.signer, author, rotate(r))
			if OutcomeOf(err) != Reject || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("got %v, want a rejection mentioning %q", err, tc.why)
			}
		})
	}
	off := rotate(valid)
	off.Tracker = DeriveTrackerID(rawPub(t, inception), "designs")
	if _, err := SignAs(next, author, off); OutcomeOf(err) != Reject {
		t.Errorf("a rotate off the node tracker: %v", err)
	}
}

// TestValidateRotated: Validate ignores a key signing for another author;
// ValidateRotated returns it, Rotated, for a store to place.
func TestValidateRotated(t *testing.T) {
	inception, next := testKey(t, 1), testKey(t, 2)
	author, _ := NodeID(inception.GetPublic())
	a, err := SignAs(next, author, thingPayload(t, inception, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Validate("", a.Raw(), testNow); OutcomeOf(err) != Ignore {
		t.Errorf("Validate: %v, want ignored", err)
	}
	if b, err := ValidateRotated("", a.Raw(), testNow); err != nil || !b.Rotated() {
		t.Errorf("ValidateRotated: %v", err)
	}
}
