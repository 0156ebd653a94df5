package topics

import (
	"errors"
	"fmt"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// TrustLevel is what a trust record says of its subject. It is the author's
// statement only: the level a node gives another is computed locally, from
// the records it holds (package trust), and never travels.
type TrustLevel string

// Trust levels a trust record may state.
const (
	TrustVerified   TrustLevel = "verified"   // the author compared the subject's fingerprint out of band
	TrustTrusted    TrustLevel = "trusted"    // vouched for, fingerprint not compared
	TrustMarginal   TrustLevel = "marginal"   // partly vouched for
	TrustDistrusted TrustLevel = "distrusted" // not to be believed
	TrustNone       TrustLevel = "none"       // withdraws the author's earlier record on the subject
)

// Trust is a trust record (kind "trust") on the author's node tracker: what
// the author thinks of another node. The latest record, by seq, of an author
// on a subject stands (see Payload.RecordKey).
type Trust struct {
	Subject string     `json:"subject"` // a node ID, canonical, not the author's
	Level   TrustLevel `json:"level"`
	// Fingerprint is the subject's (FingerprintOf its key): required with
	// TrustVerified, absent otherwise. It must match the subject, which
	// anyone can check from the subject's node ID alone.
	Fingerprint string     `json:"fingerprint,omitempty"`
	Note        string     `json:"note,omitempty"` // one line, at most MaxNoteLen
	Ext         Extensions `json:",embed"`
}

// Check reports the first way t breaks the payload rules, or nil. That the
// subject is not the author is checked with the payload (ParsePayload).
func (t *Trust) Check() error {
	var c checker
	c.push("trust", -1)
	c.ext(t.Ext)
	raw := c.nodeID("subject", t.Subject)
	switch t.Level {
	case TrustVerified:
		if t.Fingerprint == "" {
			c.failf("fingerprint", " is required with level %q", TrustVerified)
		}
	case TrustTrusted, TrustMarginal, TrustDistrusted, TrustNone:
		if t.Fingerprint != "" {
			c.failf("fingerprint", " is only for level %q, not %q", TrustVerified, t.Level)
		}
	default:
		c.failf("level", " %q: want verified, trusted, marginal, distrusted or none", clip(string(t.Level)))
	}
	if t.Fingerprint != "" && c.err == nil {
		if err := CheckFingerprint(t.Fingerprint); err != nil {
			c.failf("fingerprint", ": %v", err)
		} else if want := FingerprintOf(raw); t.Fingerprint != want {
			c.failf("fingerprint", " %s does not match the subject's key (%s)", t.Fingerprint, want)
		}
	}
	c.str("note", t.Note, MaxNoteLen)
	return c.err
}

// FlagReason says why a flag was raised.
type FlagReason string

// Reasons a flag may give.
const (
	FlagMalware       FlagReason = "malware"       // harmful files or instructions
	FlagSpam          FlagReason = "spam"          // junk, advertising, floods
	FlagObjectionable FlagReason = "objectionable" // offensive or abusive content
	FlagInfringement  FlagReason = "infringement"  // someone else's work without leave
	FlagBroken        FlagReason = "broken"        // does not work as described; dead links
	FlagOther         FlagReason = "other"         // see the note
)

// Flag is a flag record (kind "flag") on the author's node tracker: the
// author marks an announcement, a Thing, a tracker or a node as suspicious,
// or withdraws that mark. The latest record, by seq, of an author on a
// target stands (see Payload.RecordKey).
type Flag struct {
	Target   FlagTarget `json:"target"`
	Reason   FlagReason `json:"reason,omitempty"`  // required unless Withdraw
	Note     string     `json:"note,omitempty"`    // one line, at most MaxNoteLen
	Withdraw bool       `json:"withdraw,omitzero"` // true takes the author's flag on Target back
	Ext      Extensions `json:",embed"`
}

// FlagTarget is what a flag is about: exactly one of an announcement, a
// Thing (Tracker and Thing), a tracker (Tracker alone) or a node.
type FlagTarget struct {
	Announcement ID        `json:"announcement,omitzero"`
	Tracker      TrackerID `json:"tracker,omitzero"`
	Thing        string    `json:"thing,omitempty"` // a Thing ID on Tracker
	Node         string    `json:"node,omitempty"`  // a node ID, canonical
}

// Key returns the target as one string, the same for every spelling of the
// same target and different for different targets: "announcement:ID",
// "thing:TRACKER/THING_ID", "tracker:TRACKER" or "node:NODE_ID". It is ""
// for a target that is not exactly one of these.
func (ft FlagTarget) Key() string {
	switch ft.shape() {
	case "announcement":
		return "announcement:" + ft.Announcement.String()
	case "thing":
		return "thing:" + ft.Tracker.String() + "/" + ft.Thing
	case "tracker":
		return "tracker:" + ft.Tracker.String()
	case "node":
		return "node:" + ft.Node
	}
	return ""
}

// shape names which target ft is, or returns "" if it is none or several.
func (ft FlagTarget) shape() string {
	ann, tr, th, node := !ft.Announcement.IsZero(), !ft.Tracker.IsZero(), ft.Thing != "", ft.Node != ""
	switch {
	case ann && !tr && !th && !node:
		return "announcement"
	case tr && th && !ann && !node:
		return "thing"
	case tr && !th && !ann && !node:
		return "tracker"
	case node && !ann && !tr && !th:
		return "node"
	}
	return ""
}

var (
	errEmptyMember = errors.New("present but empty (leave it out instead)")
	errZeroMember  = errors.New("the zero ID (leave it out instead)")
)

// UnmarshalJSONFrom decodes a target strictly: a member that is present
// must name something, since an empty "thing" read as absent would turn a
// Thing's flag into its tracker's.
func (ft *FlagTarget) UnmarshalJSONFrom(d *jsontext.Decoder) error {
	var w struct {
		Announcement *ID        `json:"announcement"`
		Tracker      *TrackerID `json:"tracker"`
		Thing        *string    `json:"thing"`
		Node         *string    `json:"node"`
	}
	if err := json.UnmarshalDecode(d, &w); err != nil {
		return err
	}
	*ft = FlagTarget{}
	if w.Announcement != nil {
		if w.Announcement.IsZero() {
			return fmt.Errorf("announcement: %w", errZeroMember)
		}
		ft.Announcement = *w.Announcement
	}
	if w.Tracker != nil {
		if w.Tracker.IsZero() {
			return fmt.Errorf("tracker: %w", errZeroMember)
		}
		ft.Tracker = *w.Tracker
	}
	if w.Thing != nil {
		if *w.Thing == "" {
			return fmt.Errorf("thing: %w", errEmptyMember)
		}
		ft.Thing = *w.Thing
	}
	if w.Node != nil {
		if *w.Node == "" {
			return fmt.Errorf("node: %w", errEmptyMember)
		}
		ft.Node = *w.Node
	}
	return nil
}

// Check reports the first way f breaks the payload rules, or nil.
func (f *Flag) Check() error {
	var c checker
	c.push("flag", -1)
	c.ext(f.Ext)
	ft := &f.Target
	c.push("target", -1)
	switch ft.shape() {
	case "":
		c.failf("", " must be exactly one of {announcement}, {tracker, thing}, {tracker} or {node}")
	case "thing":
		c.required("thing", ft.Thing, MaxIDLen)
	case "node":
		c.nodeID("node", ft.Node)
	}
	c.pop()
	switch f.Reason {
	case FlagMalware, FlagSpam, FlagObjectionable, FlagInfringement, FlagBroken, FlagOther:
	case "":
		if !f.Withdraw {
			c.failf("reason", " is required")
		}
	default:
		c.failf("reason", " %q: want malware, spam, objectionable, infringement, broken or other", clip(string(f.Reason)))
	}
	c.str("note", f.Note, MaxNoteLen)
	return c.err
}

// nodeID checks a node ID as records write it and returns its raw key (nil
// if it is not one).
func (c *checker) nodeID(leaf, s string) []byte {
	if s == "" {
		c.failf(leaf, " is required")
		return nil
	}
	raw, err := ParseNodeID(s)
	if err != nil {
		c.failf(leaf, ": %v", err)
	}
	return raw
}
