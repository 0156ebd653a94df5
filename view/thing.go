package view

import "github.com/thingtracker/ttn/topics"

// Thing is one Thing with its history: every version in the order first
// announced, each with its announcements (the first, then its edits), its
// parents, its retraction, and the body of its latest edit.
type Thing struct {
	Tracker topics.TrackerID `json:"tracker"`
	ID      string           `json:"id"`
	Author  string           `json:"author"`
	Trust   string           `json:"trust"` // the author's trust level here
	// Latest is the newest version not retracted ("" when all are).
	Latest   string    `json:"latest"`
	Versions []Version `json:"versions"`
	// Truncated is set when older versions were left out.
	Truncated bool `json:"truncated,omitempty"`
	// Flags are the flags on the Thing, its announcements, its tracker
	// and its author.
	Flags Flags `json:"flags"`
}

// Version is one version of a Thing.
type Version struct {
	Version       string          `json:"version"`
	Announcements []Ref           `json:"announcements"` // the first, then its edits, in seq order
	Parents       []topics.Parent `json:"parents,omitempty"`
	Retracted     *Ref            `json:"retracted,omitempty"`
	Hidden        bool            `json:"hidden"` // retracted, and not edited since
	Thing         *topics.Thing   `json:"thing"`  // as its latest edit announces it
}

// Ref points at one stored announcement.
type Ref struct {
	ID     topics.ID `json:"id"`
	Seq    uint64    `json:"seq"`
	Cursor uint64    `json:"cursor"`
}

// Published is what publishing one Thing did.
type Published struct {
	ID     topics.ID `json:"id"`
	Cursor uint64    `json:"cursor"`
	Seq    uint64    `json:"seq"`
	// New is false when the Thing changed nothing (identical content) and
	// ID is the existing announcement.
	New bool `json:"new"`
}

// PublishResult is what a publish through an API did: one result per
// Thing, in the order given.
type PublishResult struct {
	Published []Published `json:"published"`
}
