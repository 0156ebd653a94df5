package view

import "github.com/thingtracker/ttn/topics"

// Flags are the standing flags on something shown (an announcement, a
// Thing, a tracker, a node) and what they add up to for this node.
type Flags struct {
	// Flagged is set when a target counts as flagged: one counting flag
	// by self, a verified or a trusted node, or three by others that
	// count (marginal or web). Listings hide flagged Things by default.
	Flagged bool     `json:"flagged"`
	Flags   []FlagBy `json:"flags,omitempty"`
}

// FlagBy is one node's standing flag.
type FlagBy struct {
	Target string            `json:"target"` // topics.FlagTarget.Key
	Author string            `json:"author"`
	Level  string            `json:"level"`  // the author's trust level here
	Counts bool              `json:"counts"` // the author's level lets the flag count
	Reason topics.FlagReason `json:"reason"`
	Note   string            `json:"note,omitempty"`
	ID     topics.ID         `json:"id"` // the flag record
}

// Verdict is what a node is to this node, and why.
type Verdict struct {
	Level string `json:"level"`
	// Hops is 1 for a node this node has a record on, the hop at which a
	// web node became web, 0 otherwise.
	Hops int `json:"hops,omitempty"`
	// Introducers, for a web node, are the nodes whose records make it so.
	Introducers []string `json:"introducers,omitempty"`
}

// NodeDetail is everything a node holds about another node: its profile
// from its latest node record, its fingerprint, its trust level and why,
// its trackers and public follows, and the flags it made and received.
type NodeDetail struct {
	ID          string             `json:"id"`
	Fingerprint string             `json:"fingerprint"`
	Trust       Verdict            `json:"trust"`
	Blocked     bool               `json:"blocked,omitempty"`
	Name        string             `json:"name,omitempty"`
	Description string             `json:"description,omitempty"`
	URL         string             `json:"url,omitempty"`
	Trackers    []topics.TrackerID `json:"trackers"`
	// Follows is nil when the node keeps its follows to itself or no node
	// record of it is held.
	Follows *topics.Follows `json:"follows,omitempty"`
	// Record is the node record shown, nil when none is held.
	Record *Ref `json:"record,omitempty"`
	// Commitment is the node's commitment to its recovery key in force
	// (its first node record carrying one, or its last rotation's), ""
	// when none is held.
	Commitment string `json:"commitment,omitempty"`
	// Key is the node's key state, nil while it never rotated.
	Key *KeyState `json:"key,omitempty"`
	// TrustGiven are the node's standing trust records, TrustReceived the
	// records of others on it; FlagsMade its standing flags, Flags the
	// flags on it.
	TrustGiven    []TrustBy `json:"trust_given"`
	TrustReceived []TrustBy `json:"trust_received"`
	FlagsMade     []FlagBy  `json:"flags_made"`
	Flags         Flags     `json:"flags"`
}

// TrustBy is one standing trust record.
type TrustBy struct {
	Author  string            `json:"author"`
	Subject string            `json:"subject"`
	Level   topics.TrustLevel `json:"level"`
	Note    string            `json:"note,omitempty"`
	ID      topics.ID         `json:"id"`
}

// Discovered is a tracker or node seen on the network and not followed:
// the listening-mode list a user reviews, to follow or dismiss.
type Discovered struct {
	Tracker topics.TrackerID `json:"tracker,omitzero"` // zero for a node
	Node    string           `json:"node,omitempty"`   // the tracker's owner, or the node
	Title   string           `json:"title,omitempty"`
	Level   string           `json:"level"` // the owner's trust level
	First   string           `json:"first_seen"`
	Last    string           `json:"last_seen"`
}

// KeyState is a rotated node's key state (DESIGN "Key rotation").
type KeyState struct {
	Fingerprint string `json:"fingerprint"` // of the current signing key
	Rotations   int    `json:"rotations"`
	Retired     bool   `json:"retired,omitempty"`
	Void        uint64 `json:"void,omitempty"` // entries its rotations voided here
}
