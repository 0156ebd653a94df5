package topics

import (
	"bytes"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// KindRotate is a key rotation: its body rotate names the author's new
// signing key, the commitment to the next recovery key, and the last
// entries signed by an earlier key that the author vouches for.
const KindRotate = "rotate"

// Rotation reasons.
const (
	ReasonCompromised = "compromised" // the old key was stolen
	ReasonLost        = "lost"        // the old key is gone
	ReasonRoutine     = "routine"     // a planned change
)

// MaxRotateHeads bounds a rotate record's heads: one per tracker of the
// author, the node tracker included (an envelope holds about 500).
const MaxRotateHeads = 400

// Rotate is a rotate record's body. The record is signed by the new key
// (Key), whose SHA-256 must be the commitment in force for the author;
// Next == "" retires the identity.
type Rotate struct {
	// Key is the new signing key: a libp2p protobuf public key (Ed25519),
	// base64 in JSON.
	Key []byte `json:"key"`
	// Next is the commitment to the next recovery key (Commitment), or ""
	// to retire the identity: nothing signed after it is accepted.
	Next string `json:"next"`
	// Heads names, for each of the author's trackers, the last entry
	// signed by an earlier key that the author vouches for. Entries of an
	// earlier key past them (or on a tracker not named) are void.
	Heads  []RotateHead `json:"heads"`
	Reason string       `json:"reason"`
}

// RotateHead is one tracker's last vouched-for entry.
type RotateHead struct {
	Tracker TrackerID `json:"tracker"`
	Seq     uint64    `json:"seq"`
	ID      ID        `json:"id"`
}

// RawKey returns the new key's raw 32 bytes, or an error when Key is not a
// canonical Ed25519 public key.
func (r *Rotate) RawKey() ([]byte, error) {
	k, err := crypto.UnmarshalPublicKey(r.Key)
	if err != nil {
		return nil, fmt.Errorf("key: %v", err)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("key: type %s, want Ed25519", k.Type())
	}
	if canon, err := crypto.MarshalPublicKey(k); err != nil || !bytes.Equal(canon, r.Key) {
		return nil, fmt.Errorf("key: not in canonical form")
	}
	return RawPublicKey(k)
}

// Head returns the vouched-for head on tracker t (seq 0 when none is
// named).
func (r *Rotate) Head(t TrackerID) RotateHead {
	for _, h := range r.Heads {
		if h.Tracker == t {
			return h
		}
	}
	return RotateHead{Tracker: t}
}

// Check checks the body's fields and limits.
func (r *Rotate) Check() error {
	var c checker
	c.push("rotate", -1)
	if _, err := r.RawKey(); err != nil {
		c.failf("key", ": %v", err)
	}
	if r.Next != "" && !isLowerHex(r.Next, 64) {
		c.failf("next", " %q: want the 64 lowercase hex digits of a SHA-256, or \"\" to retire", clip(r.Next))
	}
	switch r.Reason {
	case ReasonCompromised, ReasonLost, ReasonRoutine:
	default:
		c.failf("reason", " %q: want %s, %s or %s", clip(r.Reason), ReasonCompromised, ReasonLost, ReasonRoutine)
	}
	if c.countMax("heads", len(r.Heads), MaxRotateHeads) {
		seen := make(map[TrackerID]bool, len(r.Heads))
		for i, h := range r.Heads {
			c.push("heads", i)
			switch {
			case h.Tracker.IsZero():
				c.failf("tracker", " is required")
			case seen[h.Tracker]:
				c.failf("tracker", " %s named twice", h.Tracker)
			case h.Seq < 1 || h.Seq > MaxSeq:
				c.failf("seq", " %d out of range [1, 2^53-1]", h.Seq)
			case h.ID.IsZero():
				c.failf("id", " is required")
			}
			seen[h.Tracker] = true
			c.pop()
		}
	}
	return c.err
}
