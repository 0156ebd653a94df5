package trust

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// DefaultDepth is the depth limit when Config.Depth is zero (--trust-depth).
const DefaultDepth = 3

// maxDepth bounds Config.Depth so that a hop fits a byte. Under the rule no
// node is web beyond hop 3 anyway (see the package comment).
const maxDepth = 255

// Config configures a Graph. The zero value of each field means its default.
type Config struct {
	// Self is the ID of the node computing the levels. Required.
	Self string
	// Depth is the most hops at which a node can be web; self's own
	// subjects are at hop 1. Zero means DefaultDepth (3); 1 means no web at
	// all; values above 3 change nothing under this rule. At most 255.
	Depth int
}

// DefaultConfig returns the configuration with every default filled in but
// Self.
func DefaultConfig() Config {
	return Config{
		Depth: DefaultDepth, // --trust-depth
	}
}

func (c Config) withDefaults() Config {
	if c.Depth == 0 {
		c.Depth = DefaultDepth
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Self == "" {
		errs = append(errs, errors.New("trust: Self is empty"))
	}
	if c.Depth < 1 || c.Depth > maxDepth {
		errs = append(errs, fmt.Errorf("trust: Depth %d out of range [1, %d]", c.Depth, maxDepth))
	}
	return errors.Join(errs...)
}

// Graph holds the latest trust record of every (author, subject) pair it has
// been given, self's block list, and every node's level, kept up to date as
// records arrive. Its methods may be called concurrently; none blocks but on
// the Graph's own lock, and none does I/O.
type Graph struct {
	mu    sync.RWMutex
	depth int

	ids   map[string]int32 // node ID → index; self is index 0
	names []string         // index → node ID
	nodes []node           // index → state
	out   [][]record       // author → its standing records, by subject
	in    [][]edge         // subject → the records on it, one per author
	// intros: node → the introductions it receives (see set).
	intros [][]intro

	// update's scratch, reused from one update to the next.
	touched []uint32 // per node: tgen when update saved its old state
	prev    []state  // per node: that old state
	tgen    uint32
	olds    []int32  // the nodes touched
	queued  []uint32 // per node: qgen when queued for the current layer
	qgen    uint32
	cur     []int32
	next    []int32
}

const self int32 = 0

// record is the standing record of one pair, kept by its author. A
// withdrawn record stays, as level cNone, to hold its seq.
type record struct {
	seq     uint64
	subject int32
	inPos   int32 // its edge in in[subject]
	level   code
}

// edge is a record seen from its subject.
type edge struct {
	author int32
	level  code
}

// state is a node's computed level.
type state struct {
	level code
	hop   uint8
	power Weight
}

type node struct {
	state
	mine    code // self's latest record on the node; cUnknown if none
	blocked bool
}

// New returns an empty Graph for cfg.Self, or every problem with cfg.
func New(cfg Config) (*Graph, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := &Graph{
		depth: cfg.Depth,
		ids:   make(map[string]int32),
	}
	g.intern(cfg.Self)
	g.nodes[self].state = state{level: cSelf}
	return g, nil
}

// intern returns id's index, adding an unknown node for a new one.
func (g *Graph) intern(id string) int32 {
	if x, ok := g.ids[id]; ok {
		return x
	}
	x := int32(len(g.names))
	g.ids[id] = x
	g.names = append(g.names, id)
	g.nodes = append(g.nodes, node{})
	g.out = append(g.out, nil)
	g.in = append(g.in, nil)
	g.intros = append(g.intros, nil)
	g.touched = append(g.touched, 0)
	g.prev = append(g.prev, state{})
	g.queued = append(g.queued, 0)
	return x
}

// Add takes r if it is the latest record of its (author, subject) pair: a
// higher Seq than the one held, or the same Seq with a more cautious level
// (distrusted, then none, marginal, trusted, verified), so that a forked
// chain gives the same result in any order. It updates the levels the
// record can reach and returns whether r was taken and the nodes whose
// Level, Hops or Power changed, sorted. A record with an empty or equal
// author and subject, or a level other than a record level, is not taken.
func (g *Graph) Add(r Record) (taken bool, changed []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a, s, taken, moved := g.store(r)
	if !moved {
		return taken, nil
	}
	if a == self {
		return true, g.update(s, -1)
	}
	if k := g.key(g.nodes[a].state); k != (introKey{}) {
		c, _ := recordCode(r.Level)
		g.introduce(a, s, k, c)
		return true, g.update(-1, s)
	}
	return true, nil // the author introduces nobody: no level can move
}

// Load takes every record of rs as Add does, then recomputes every level
// in one full pass: the way to start from the records a node holds.
func (g *Graph) Load(rs []Record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.load(rs)
	g.recompute()
}

// Block puts id on self's local block list, or takes it off, and returns
// the nodes whose Level, Hops or Power changed, sorted. Self cannot be
// blocked.
func (g *Graph) Block(id string, blocked bool) (changed []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	x, ok := g.ids[id]
	switch {
	case x == self && ok:
		return nil
	case !ok && !blocked:
		return nil
	case !ok:
		x = g.intern(id)
	}
	if g.nodes[x].blocked == blocked {
		return nil
	}
	g.nodes[x].blocked = blocked
	return g.update(x, -1)
}

// Recompute recomputes every level from the records held, in one full pass.
// Add, Load and Block keep the levels up to date; Recompute is for checking
// them, and costs what Load's pass does.
func (g *Graph) Recompute() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recompute()
}

// Level returns what id is to self. An ID the Graph has never seen is
// Unknown.
func (g *Graph) Level(id string) Verdict {
	g.mu.RLock()
	defer g.mu.RUnlock()
	x, ok := g.ids[id]
	if !ok {
		return Verdict{Level: Unknown}
	}
	st := g.nodes[x].state
	v := Verdict{Level: levelOf[st.level], Hops: int(st.hop), Power: st.power}
	if st.level == cWeb {
		for _, in := range g.intros[x] {
			if in.hop < st.hop {
				v.Introducers = append(v.Introducers, g.names[in.author])
			}
		}
		slices.Sort(v.Introducers)
	}
	return v
}

// Each calls fn with every node whose level is not Unknown, self
// included, in no particular order, under the Graph's read lock: fn must
// not call the Graph.
func (g *Graph) Each(fn func(id string, level Level)) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	for i := range g.nodes {
		if l := levelOf[g.nodes[i].level]; l != Unknown {
			fn(g.names[i], l)
		}
	}
}

// Counts returns how many nodes the Graph knows (as author, subject or
// blocked, and self) at each level. It costs a pass over the nodes.
func (g *Graph) Counts() map[Level]int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	counts := make(map[Level]int, len(Levels))
	for i := range g.nodes {
		counts[levelOf[g.nodes[i].level]]++
	}
	return counts
}

// store keeps r if it is the latest of its pair. moved reports whether the
// pair's level changed (a newer record with the same level only moves Seq).
func (g *Graph) store(r Record) (a, s int32, taken, moved bool) {
	c, ok := g.valid(r)
	if !ok {
		return -1, -1, false, false
	}
	a, s = g.intern(r.Author), g.intern(r.Subject)
	out := g.out[a]
	i, found := slices.BinarySearchFunc(out, s, func(e record, s int32) int { return cmp.Compare(e.subject, s) })
	if !found {
		g.out[a] = slices.Insert(out, i, record{seq: r.Seq, subject: s, inPos: int32(len(g.in[s])), level: c})
		g.in[s] = append(g.in[s], edge{author: a, level: c})
	} else {
		e := &out[i]
		if !stands(r.Seq, c, e.seq, e.level) {
			return a, s, false, false
		}
		moved = c != e.level
		e.seq, e.level = r.Seq, c
		if !moved {
			return a, s, true, false
		}
		g.in[s][e.inPos].level = c
	}
	if a == self {
		g.nodes[s].mine = c
	}
	return a, s, true, true
}

// valid returns the code of r's level if the Graph takes such a record.
func (g *Graph) valid(r Record) (code, bool) {
	c, ok := recordCode(r.Level)
	return c, ok && r.Author != "" && r.Subject != "" && r.Author != r.Subject
}

// stands reports whether a record (seq, c) replaces the one held (oldSeq,
// old) of the same pair.
func stands(seq uint64, c code, oldSeq uint64, old code) bool {
	return seq > oldSeq || seq == oldSeq && caution(c) > caution(old)
}

// load takes rs in bulk: every author's records, old and new, are sorted by
// subject and the standing one of each pair kept, then every subject's
// edges are rebuilt. Two allocations for all the edges, where store would
// make one map probe and one insertion per record.
func (g *Graph) load(rs []Record) {
	type pending struct{ a, s int32 }
	ps := make([]pending, 0, len(rs))
	counts := make([]int, len(g.nodes), len(g.nodes)+len(rs)/8)
	for i := range g.out {
		counts[i] = len(g.out[i])
	}
	lastAuthor, last := "", int32(-1) // a node's records come together, in chain order
	for _, r := range rs {
		if _, ok := g.valid(r); !ok {
			ps = append(ps, pending{-1, -1})
			continue
		}
		if r.Author != lastAuthor || last < 0 {
			lastAuthor, last = r.Author, g.intern(r.Author)
		}
		a, s := last, g.intern(r.Subject)
		for len(counts) < len(g.nodes) {
			counts = append(counts, 0)
		}
		counts[a]++
		ps = append(ps, pending{a, s})
	}

	total := 0
	for _, n := range counts {
		total += n
	}
	all := make([]record, 0, total)
	for a, n := range counts {
		lo := len(all)
		all = append(all, g.out[a]...)
		g.out[a] = all[lo : len(all) : lo+n] // room for its new records, no more
		all = all[:lo+n]
	}
	for i, r := range rs {
		if p := ps[i]; p.a >= 0 {
			c, _ := recordCode(r.Level)
			g.out[p.a] = append(g.out[p.a], record{seq: r.Seq, subject: p.s, level: c})
		}
	}

	clear(counts)
	for a, out := range g.out {
		slices.SortFunc(out, func(x, y record) int {
			if c := cmp.Compare(x.subject, y.subject); c != 0 {
				return c
			}
			if c := cmp.Compare(x.seq, y.seq); c != 0 {
				return c
			}
			return cmp.Compare(caution(x.level), caution(y.level))
		})
		kept := out[:0]
		for i, e := range out {
			if i+1 < len(out) && out[i+1].subject == e.subject {
				continue // the last of a pair stands
			}
			kept = append(kept, e)
			counts[e.subject]++
		}
		g.out[a] = kept
	}

	edges := make([]edge, total)
	lo := 0
	for s, n := range counts {
		g.in[s] = edges[lo : lo : lo+n]
		lo += n
	}
	for i := range g.nodes {
		g.nodes[i].mine = cUnknown
	}
	for a, out := range g.out {
		for i := range out {
			e := &out[i]
			e.inPos = int32(len(g.in[e.subject]))
			g.in[e.subject] = append(g.in[e.subject], edge{author: int32(a), level: e.level})
			if a == int(self) {
				g.nodes[e.subject].mine = e.level
			}
		}
	}
}

// base is a node's level from self's own view alone (self, the block list,
// self's records): cUnknown leaves it to the introducers.
func (g *Graph) base(x int32) state {
	n := &g.nodes[x]
	switch {
	case x == self:
		return state{level: cSelf}
	case n.blocked:
		return state{level: cBlocked}
	case n.mine != cUnknown && n.mine != cNone:
		return state{level: n.mine, hop: 1, power: strength(n.mine)}
	}
	return state{level: cUnknown}
}

// introduces reports whether a node in state st introduces others: it has
// power and is closer than the depth limit.
func (g *Graph) introduces(st state) bool {
	return st.power != WeightNone && int(st.hop) < g.depth
}

// eval decides whether candidate y is web from the introducers at hop ≤ h:
// ≥ 1 full or ≥ 3 marginal introductions make it web at hop h+1, with power
// one step weaker than its strongest introduction.
func (g *Graph) eval(y int32, h int) (state, bool) {
	var best Weight
	n := 0
	for _, in := range g.intros[y] {
		if int(in.hop) <= h {
			n++
			best = max(best, in.weight)
		}
	}
	if best == WeightFull || n >= 3 {
		return state{level: cWeb, hop: uint8(h + 1), power: best.weaker()}, true
	}
	return state{level: cUnknown}, false
}

// recompute is the full pass, layer by layer: self's view first, then the
// nodes that become web at hop 2 from the introducers at hop 1, at hop 3
// from those at hops ≤ 2, and so on to the depth limit, stopping early when
// a layer adds no introducer.
func (g *Graph) recompute() {
	for x := range g.nodes {
		g.nodes[x].state = state{}
		g.intros[x] = g.intros[x][:0]
	}
	for x := range g.nodes {
		g.set(int32(x), g.base(int32(x)))
	}
	for h := 1; h < g.depth; h++ {
		more := false
		for x := range g.nodes {
			y := int32(x)
			if len(g.intros[y]) == 0 || g.nodes[y].level != cUnknown || g.base(y).level != cUnknown {
				continue
			}
			if st, ok := g.eval(y, h); ok {
				g.set(y, st)
				more = more || g.introduces(st)
			}
		}
		if !more {
			break
		}
	}
}
