package feed

import (
	"cmp"
	"slices"

	"github.com/go-json-experiment/json"

	"github.com/thingtracker/ttn/topics"
)

// Range is an inclusive range of missing seqs in a chain.
type Range struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// Fork is the evidence that an author signed two different entries for one
// place in a chain: A and B are both stored. Seq is where they conflict.
type Fork struct {
	Seq    uint64    `json:"seq"`
	A      topics.ID `json:"a"`
	B      topics.ID `json:"b"`
	Reason string    `json:"reason"`
}

// chainState is what the log knows of one chain. A chain with a fork is
// frozen: nothing more is appended to it.
type chainState struct {
	Contig   uint64    `json:"contig"` // seqs 1..Contig are all present
	ContigID topics.ID `json:"contig_id,omitzero"`
	Max      uint64    `json:"max"` // highest seq present
	MaxID    topics.ID `json:"max_id,omitzero"`
	Gaps     []Range   `json:"gaps,omitempty"` // missing below Max, sorted, disjoint
	Fork     *Fork     `json:"fork,omitempty"`
	Bytes    uint64    `json:"bytes,omitempty"` // envelope bytes stored, for the quotas
}

func (c *chainState) clone() *chainState {
	d := *c
	d.Gaps = slices.Clone(c.Gaps)
	return &d
}

// present reports whether seq is stored.
func (c *chainState) present(seq uint64) bool {
	if seq == 0 || seq > c.Max {
		return false
	}
	for _, g := range c.Gaps {
		if g.From <= seq && seq <= g.To {
			return false
		}
	}
	return true
}

// gapsWith returns the gap ranges that would result from adding seq. It
// does not change c, but the result may share c.Gaps.
func (c *chainState) gapsWith(seq uint64) []Range {
	if seq == c.Max+1 {
		return c.Gaps
	}
	if seq > c.Max {
		return append(slices.Clone(c.Gaps), Range{c.Max + 1, seq - 1})
	}
	var gaps []Range
	for _, g := range c.Gaps {
		switch {
		case seq < g.From || seq > g.To:
			gaps = append(gaps, g)
		default:
			if g.From < seq {
				gaps = append(gaps, Range{g.From, seq - 1})
			}
			if seq < g.To {
				gaps = append(gaps, Range{seq + 1, g.To})
			}
		}
	}
	return gaps
}

// contig returns the highest seq below which nothing is missing.
func (c *chainState) contig() uint64 {
	if len(c.Gaps) == 0 {
		return c.Max
	}
	return c.Gaps[0].From - 1
}

// Ref points at one stored announcement.
type Ref struct {
	ID     topics.ID `json:"id"`
	Seq    uint64    `json:"seq"`
	Cursor uint64    `json:"cursor"`
	// hash is the canonical body hash when known (own publishes); it decides
	// whether a publish changes anything.
	Hash topics.ID `json:"hash,omitzero"`
}

// VersionState is one version of a Thing: its announcements in seq order (the
// first, then its edits), the parents of the latest, and its retraction.
type VersionState struct {
	Version       string          `json:"version"`
	Announcements []Ref           `json:"announcements"`
	Parents       []topics.Parent `json:"parents,omitempty"`
	Retracted     *Ref            `json:"retracted,omitempty"`
}

// Latest returns the version's latest announcement (its newest edit).
func (v *VersionState) Latest() Ref { return v.Announcements[len(v.Announcements)-1] }

// Hidden reports whether the version is retracted: a retraction newer than
// its latest edit hides it; an edit after the retraction shows it again.
func (v *VersionState) Hidden() bool {
	return v.Retracted != nil && v.Retracted.Seq > v.Latest().Seq
}

// ThingState is the latest state of one Thing (tracker, thing id): every
// version in the order first announced.
type ThingState struct {
	Tracker  topics.TrackerID `json:"tracker"`
	Thing    string           `json:"thing"`
	Versions []VersionState   `json:"versions"`
}

// Latest returns the newest version that is not retracted, or nil if every
// version is.
func (t *ThingState) Latest() *VersionState {
	for i := len(t.Versions) - 1; i >= 0; i-- {
		if !t.Versions[i].Hidden() {
			return &t.Versions[i]
		}
	}
	return nil
}

func (t *ThingState) version(v string) *VersionState {
	for i := range t.Versions {
		if t.Versions[i].Version == v {
			return &t.Versions[i]
		}
	}
	return nil
}

// thingRow is one t or x record of a Thing: an announcement of a version,
// or a retraction of one.
type thingRow struct {
	retraction bool
	version    string
	ref        Ref
	parents    []topics.Parent
}

// buildThing derives a Thing's state from its rows, in any order.
func buildThing(tracker topics.TrackerID, thing string, rows []thingRow) *ThingState {
	s := &ThingState{Tracker: tracker, Thing: thing}
	byVersion := make(map[string]int)
	latestParents := make(map[string]uint64)
	slices.SortFunc(rows, func(a, b thingRow) int { return cmp.Compare(a.ref.Seq, b.ref.Seq) })
	for _, r := range rows {
		i, ok := byVersion[r.version]
		if !ok {
			if r.retraction {
				continue // retracts a version this node does not hold
			}
			i = len(s.Versions)
			byVersion[r.version] = i
			s.Versions = append(s.Versions, VersionState{Version: r.version})
		}
		v := &s.Versions[i]
		if r.retraction {
			ref := r.ref
			v.Retracted = &ref
			continue
		}
		v.Announcements = append(v.Announcements, r.ref)
		if r.ref.Seq >= latestParents[r.version] {
			latestParents[r.version] = r.ref.Seq
			v.Parents = r.parents
		}
	}
	return s
}

// TrackerState is what the log knows of a tracker.
type TrackerState struct {
	ID    topics.TrackerID `json:"id"`
	Owner string           `json:"owner"`
	// Name is the tracker's name from its latest tracker announcement; "" for
	// the node tracker or while no tracker announcement is known.
	Name string `json:"name"`
	// Node marks the owner's node tracker.
	Node bool `json:"node"`
	// Info is the latest tracker (or, for the node tracker, node) record.
	Info *Ref `json:"info,omitempty"`
}

var stateOptions = json.Deterministic(true)

func encodeState(v any) ([]byte, error) { return json.Marshal(v, stateOptions) }

func decodeState(b []byte, v any) error { return json.Unmarshal(b, v) }
