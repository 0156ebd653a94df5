package topics

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Kinds of announcement known to payload version 1.
const (
	KindTracker = "tracker" // body tracker_info: the tracker's name and description
	KindThing   = "thing"   // body thing: a new Thing, version or edit
	KindRetract = "retract" // body retracts: the announcement ID of a Thing version to hide
	KindNode    = "node"    // body node_info: the node's profile, trackers and follows
	KindTrust   = "trust"   // body trust: what the author thinks of another node
	KindFlag    = "flag"    // body flag: the author marks something as suspicious
)

// Version is the payload version this implementation writes.
const Version = 1

// bodyField names the body member each v1 kind carries.
var bodyField = map[string]string{
	KindTracker: "tracker_info",
	KindThing:   "thing",
	KindRetract: "retracts",
	KindNode:    "node_info",
	KindTrust:   "trust",
	KindFlag:    "flag",
	KindRotate:  "rotate",
}

// OnNodeTracker reports whether kind belongs on its author's node tracker,
// and only there.
func OnNodeTracker(kind string) bool {
	return kind == KindNode || kind == KindTrust || kind == KindFlag || kind == KindRotate
}

// Payload is an announcement's signed JSON content. Exactly one body field is
// set, the one belonging to Kind. An announcement of a later version or an
// unknown kind is Opaque: only its chain fields are read, and it is stored and
// relayed as it is.
type Payload struct {
	V       int       `json:"v"`
	Kind    string    `json:"kind"`
	Author  string    `json:"author"`
	Tracker TrackerID `json:"tracker"`
	Seq     uint64    `json:"seq"`
	Prev    ID        `json:"prev,omitzero"`
	Time    string    `json:"time"`

	Thing       *Thing       `json:"thing,omitempty"`
	TrackerInfo *TrackerInfo `json:"tracker_info,omitempty"`
	Retracts    ID           `json:"retracts,omitzero"`
	NodeInfo    *NodeInfo    `json:"node_info,omitempty"`
	Trust       *Trust       `json:"trust,omitempty"`
	Flag        *Flag        `json:"flag,omitempty"`
	Rotate      *Rotate      `json:"rotate,omitempty"`
}

// Opaque reports whether this implementation does not understand the body.
func (p *Payload) Opaque() bool {
	_, known := bodyField[p.Kind]
	return p.V != Version || !known
}

// chainHead is the part of a payload every version shares.
type chainHead struct {
	V       int                       `json:"v"`
	Kind    string                    `json:"kind"`
	Author  string                    `json:"author"`
	Tracker TrackerID                 `json:"tracker"`
	Seq     uint64                    `json:"seq"`
	Prev    ID                        `json:"prev,omitzero"`
	Time    string                    `json:"time"`
	Rest    map[string]jsontext.Value `json:",embed"`
}

// wirePayload is a version 1 payload as decoded in one pass: the chain
// fields, every body, and whatever else is there (an error for version 1).
type wirePayload struct {
	chainHead
	Thing       *Thing       `json:"thing"`
	TrackerInfo *TrackerInfo `json:"tracker_info"`
	Retracts    *ID          `json:"retracts"`
	NodeInfo    *NodeInfo    `json:"node_info"`
	Trust       *Trust       `json:"trust"`
	Flag        *Flag        `json:"flag"`
	Rotate      *Rotate      `json:"rotate"`
}

// ParsePayload parses payload JSON strictly (see CheckStrictJSON), checks the
// chain fields, and for a known kind of version 1 decodes and checks the body.
// It does not check the author against a key: Validate does.
//
// Version 1 payloads are decoded in one pass with case-sensitive names, no
// duplicates and no unknown members, which enforces CheckStrictJSON's rules
// for every typed object; the free-form parts (x*Metadata values, and the
// bodies of opaque payloads) are checked with CheckStrictJSON itself.
func ParsePayload(b []byte) (*Payload, error) {
	var w wirePayload
	if err := strictUnmarshal(b, &w); err != nil {
		// A later version or an unknown kind may shape its body otherwise.
		if p, ok := parseOpaque(b); ok {
			return p, nil
		}
		return nil, rejectf("payload: %v", err)
	}
	h := &w.chainHead
	p := &Payload{V: h.V, Kind: h.Kind, Author: h.Author, Tracker: h.Tracker, Seq: h.Seq, Prev: h.Prev, Time: h.Time}
	if err := p.checkChain(); err != nil {
		return nil, rejectf("payload: %v", err)
	}
	if p.Opaque() {
		if err := CheckStrictJSON(b); err != nil {
			return nil, rejectf("payload: %v", err)
		}
		return p, nil
	}
	for name := range h.Rest {
		return nil, rejectf("payload: unknown member %q for kind %q", clip(name), p.Kind)
	}
	field := bodyField[p.Kind]
	bodies := 0
	present := "" // the body member found last
	var err error
	if w.Thing != nil {
		bodies, present = bodies+1, "thing"
		p.Thing = w.Thing
		err = w.Thing.Check()
	}
	if w.TrackerInfo != nil {
		bodies, present = bodies+1, "tracker_info"
		p.TrackerInfo = w.TrackerInfo
		err = w.TrackerInfo.Check()
	}
	if w.NodeInfo != nil {
		bodies, present = bodies+1, "node_info"
		p.NodeInfo = w.NodeInfo
		err = w.NodeInfo.Check()
	}
	if w.Trust != nil {
		bodies, present = bodies+1, "trust"
		p.Trust = w.Trust
		err = w.Trust.Check()
		if err == nil && p.Trust.Subject == p.Author {
			err = errors.New("trust.subject is the author itself")
		}
	}
	if w.Flag != nil {
		bodies, present = bodies+1, "flag"
		p.Flag = w.Flag
		err = w.Flag.Check()
	}
	if w.Rotate != nil {
		bodies, present = bodies+1, "rotate"
		p.Rotate = w.Rotate
		err = w.Rotate.Check()
	}
	if w.Retracts != nil {
		bodies, present = bodies+1, "retracts"
		p.Retracts = *w.Retracts
		if p.Retracts.IsZero() {
			err = fmt.Errorf("retracts is the zero ID")
		}
	}
	switch {
	case bodies != 1 || present != field:
		return nil, rejectf("payload: kind %q needs %q and no other body", p.Kind, field)
	case err != nil:
		return nil, rejectf("payload: %s: %v", field, err)
	}
	return p, nil
}

// RecordKey returns what a later record of the same author replaces, for
// the kinds where only the latest (by seq) of an author stands: a trust
// record's subject ("trust:NODE_ID") and a flag's target ("flag:" and
// FlagTarget.Key). The pair (Author, RecordKey) identifies the record. ok is
// false for other kinds and opaque payloads.
func (p *Payload) RecordKey() (key string, ok bool) {
	switch {
	case p.Opaque():
		return "", false
	case p.Kind == KindTrust && p.Trust != nil:
		return "trust:" + p.Trust.Subject, true
	case p.Kind == KindFlag && p.Flag != nil:
		return "flag:" + p.Flag.Target.Key(), true
	}
	return "", false
}

// parseOpaque parses a payload this implementation does not understand: it
// must follow the JSON rules and have valid chain fields.
func parseOpaque(b []byte) (*Payload, bool) {
	var h chainHead
	if err := strictUnmarshal(b, &h); err != nil {
		return nil, false
	}
	p := &Payload{V: h.V, Kind: h.Kind, Author: h.Author, Tracker: h.Tracker, Seq: h.Seq, Prev: h.Prev, Time: h.Time}
	if !p.Opaque() || p.checkChain() != nil || CheckStrictJSON(b) != nil {
		return nil, false
	}
	return p, true
}

// checkChain checks the fields that make an announcement a chain entry.
func (p *Payload) checkChain() error {
	switch {
	case p.V < 1:
		return fmt.Errorf("v %d: want 1 or later", p.V)
	case p.Kind == "" || len(p.Kind) > 32 || strings.ContainsAny(p.Kind, ".*> \t\r\n"):
		return fmt.Errorf("kind %q: want a short word", clip(p.Kind))
	case p.Author == "":
		return fmt.Errorf("author is required")
	case p.Tracker.IsZero():
		return fmt.Errorf("tracker is required")
	case p.Seq < 1 || p.Seq > MaxSeq:
		return fmt.Errorf("seq %d out of range [1, 2^53-1]", p.Seq)
	case p.Seq == 1 && !p.Prev.IsZero():
		return fmt.Errorf("prev must be absent at seq 1")
	case p.Seq > 1 && p.Prev.IsZero():
		return fmt.Errorf("prev is required at seq %d", p.Seq)
	}
	if _, err := ParseTime(p.Time); err != nil {
		return err
	}
	return nil
}

// ParseTime parses an announcement time: RFC 3339 in UTC ("Z").
func ParseTime(s string) (time.Time, error) {
	if !strings.HasSuffix(s, "Z") {
		return time.Time{}, fmt.Errorf("time %q: want RFC 3339 in UTC, ending in Z", clip(s))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want RFC 3339 in UTC", clip(s))
	}
	return t, nil
}

// FormatTime formats t as announcements carry it: RFC 3339, UTC, seconds.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Marshal encodes p as this implementation signs it: fields in declaration
// order, map keys sorted, no insignificant space. The same payload always
// encodes to the same bytes.
func (p *Payload) Marshal() ([]byte, error) {
	if p.Opaque() {
		return nil, fmt.Errorf("topics: cannot encode an opaque payload (v %d, kind %q)", p.V, p.Kind)
	}
	b, err := json.Marshal(p, json.Deterministic(true))
	if err != nil {
		return nil, fmt.Errorf("topics: encode payload: %w", err)
	}
	return b, nil
}
