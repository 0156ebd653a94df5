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

// Ancestry is what a Thing derives from and what derives from it, one step
// each way: GET /v1/things/{tracker}/{thing}/ancestry.
type Ancestry struct {
	Tracker topics.TrackerID `json:"tracker"`
	Thing   string           `json:"thing"`
	// Parents are the parents each version of the Thing names, with
	// whether this node holds them: a parent not held is named all the
	// same (its tracker may not be followed here).
	Parents []AncestryParent `json:"parents"`
	// Children are the Thing versions that name the Thing as a parent,
	// across trackers, among those this node holds.
	Children []AncestryChild `json:"children"`
}

// AncestryParent is one parent a version names.
type AncestryParent struct {
	Version string        `json:"version"` // the version of the Thing that names it
	Parent  topics.Parent `json:"parent"`  // as named; its tracker filled in when it is the Thing's own
	Held    bool          `json:"held"`    // this node holds that Thing (and version, when one is named)
	Title   string        `json:"title,omitempty"`
}

// AncestryChild is one Thing version that derives from the Thing.
type AncestryChild struct {
	Tracker       topics.TrackerID `json:"tracker"`
	Thing         string           `json:"thing"`
	Version       string           `json:"version"`
	Announcement  topics.ID        `json:"announcement"`
	ParentVersion string           `json:"parent_version,omitempty"` // the Thing's version it names, "" for any
	Title         string           `json:"title,omitempty"`
}
