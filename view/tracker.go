package view

import "github.com/thingtracker/ttn/topics"

// Tracker is one tracker of a TrackersPage.
type Tracker struct {
	ID    topics.TrackerID `json:"id"`
	Owner string           `json:"owner"`
	// Name is the tracker's name (what its ID hashes; a TTN document's
	// "id"), "" for a node tracker.
	Name  string `json:"name"`
	Title string `json:"title,omitempty"`
	Node  bool   `json:"node"` // the owner's node tracker
	Heads []Head `json:"heads"`
}

// TrackersPage is a page of trackers, in ID order; Next, when set, is the
// "after" of the next page.
type TrackersPage struct {
	Trackers []Tracker `json:"trackers"`
	Next     string    `json:"next,omitempty"`
}

// Head is what a node holds of one chain (one author on one tracker).
type Head struct {
	Tracker topics.TrackerID `json:"tracker"`
	Author  string           `json:"author"` // node ID
	// Seq and ID: the contiguous head (seqs 1..Seq all present).
	Seq uint64    `json:"seq"`
	ID  topics.ID `json:"id"`
	// Max and MaxID: the highest seq present.
	Max   uint64    `json:"max"`
	MaxID topics.ID `json:"max_id"`
	// Gaps are missing ranges below Max.
	Gaps []Range `json:"gaps,omitempty"`
	// Fork is set when the chain is frozen by a fork.
	Fork *Fork `json:"fork,omitempty"`
}

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
