package datadir

import (
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/view"
)

// The log's snapshots as the front ends show them (package view).

// ViewHeads converts chain heads.
func ViewHeads(hs []feed.Head) []view.Head {
	out := make([]view.Head, len(hs))
	for i, h := range hs {
		v := view.Head{Tracker: h.Tracker, Author: h.Author, Seq: h.Seq, ID: h.ID, Max: h.Max, MaxID: h.MaxID}
		for _, g := range h.Gaps {
			v.Gaps = append(v.Gaps, view.Range(g))
		}
		if f := h.Fork; f != nil {
			v.Fork = &view.Fork{Seq: f.Seq, A: f.A, B: f.B, Reason: f.Reason}
		}
		out[i] = v
	}
	return out
}

// ViewRef converts a reference to a stored announcement.
func ViewRef(r feed.Ref) view.Ref { return view.Ref{ID: r.ID, Seq: r.Seq, Cursor: r.Cursor} }

// ViewPublished converts what a publish did.
func ViewPublished(ps []feed.Published) []view.Published {
	out := make([]view.Published, len(ps))
	for i, p := range ps {
		out[i] = view.Published(p)
	}
	return out
}
