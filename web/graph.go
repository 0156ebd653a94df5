package web

import (
	"slices"
	"strings"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// The ancestry graph's geometry, in SVG user units.
const (
	boxW, boxH = 230, 44
	rowH       = 56
	colGap     = 70
	labelMax   = 30
)

// Graph is a Thing's ancestry drawn as SVG: what it derives from on the
// left, the Thing in the middle, what derives from it on the right.
type Graph struct {
	Width, Height int
	Boxes         []Box
	Edges         []Edge
}

// Box is one Thing in the graph.
type Box struct {
	X, Y        int
	Href        string // "" for a parent not held here
	Label, Note string
	Self, Held  bool
}

// Edge joins a parent's box to its child's (left to right).
type Edge struct{ X1, Y1, X2, Y2 int }

// drawAncestry lays out a Thing's ancestry: one box per distinct parent and
// child, with the versions that name them in the note.
func drawAncestry(a *view.Ancestry, t *view.Thing) *Graph {
	type key struct {
		tracker topics.TrackerID
		thing   string
	}
	var parents, children []Box
	seen := map[key]int{}
	versions := map[key][]string{} // the parent's versions named
	for _, p := range a.Parents {
		k := key{p.Parent.Tracker, p.Parent.Thing}
		v := p.Parent.Version
		if v == "" {
			v = "any"
		}
		if !slices.Contains(versions[k], v) {
			versions[k] = append(versions[k], v)
		}
		if _, ok := seen[k]; ok {
			continue
		}
		seen[k] = len(parents)
		b := Box{Label: label(p.Title, p.Parent.Thing), Held: p.Held}
		if p.Held {
			b.Href = thingURL(p.Parent.Tracker, p.Parent.Thing)
		}
		parents = append(parents, b)
	}
	for k, i := range seen {
		switch vs := versions[k]; {
		case len(vs) == 1 && vs[0] == "any":
			parents[i].Note = "any version"
		case len(vs) == 1:
			parents[i].Note = "version " + vs[0]
		default:
			parents[i].Note = "versions " + strings.Join(vs, ", ")
		}
		if !parents[i].Held {
			parents[i].Note += " · not held here"
		}
	}
	clear(seen)
	for _, c := range a.Children {
		k := key{c.Tracker, c.Thing}
		if _, ok := seen[k]; ok {
			continue
		}
		seen[k] = len(children)
		note := "from any version"
		if c.ParentVersion != "" {
			note = "from version " + c.ParentVersion
		}
		children = append(children, Box{Label: label(c.Title, c.Thing), Href: thingURL(c.Tracker, c.Thing), Note: note, Held: true})
	}
	rows := max(len(parents), len(children), 1)
	g := &Graph{Width: 3*boxW + 2*colGap + 2, Height: rows*rowH + 8}
	title := t.ID
	for _, v := range t.Versions {
		if v.Version == t.Latest && v.Thing != nil && v.Thing.Title != "" {
			title = v.Thing.Title
		}
	}
	// Each column centred on the graph's height.
	top := func(n, i int) int { return (g.Height-n*rowH)/2 + i*rowH + (rowH-boxH)/2 }
	self := Box{X: boxW + colGap + 1, Y: top(1, 0), Label: label(title, t.ID), Note: "this Thing", Self: true, Held: true}
	g.Boxes = append(g.Boxes, self)
	mid := self.Y + boxH/2
	for i, b := range parents {
		b.X, b.Y = 1, top(len(parents), i)
		g.Boxes = append(g.Boxes, b)
		g.Edges = append(g.Edges, Edge{b.X + boxW, b.Y + boxH/2, self.X, mid})
	}
	for i, b := range children {
		b.X, b.Y = self.X+boxW+colGap, top(len(children), i)
		g.Boxes = append(g.Boxes, b)
		g.Edges = append(g.Edges, Edge{self.X + boxW, mid, b.X, b.Y + boxH/2})
	}
	return g
}

// label is a box's text: the title, else the ID, cut to fit.
func label(title, id string) string {
	s := title
	if s == "" {
		s = id
	}
	if r := []rune(s); len(r) > labelMax {
		return string(r[:labelMax-1]) + "…"
	}
	return s
}
