package trust

import (
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
	out   [][]edge         // author → its records, one per subject
	in    [][]edge         // subject → the records on it, one per author
	recs  map[pair]rec     // the latest record of each pair

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

// pair is an (author, subject) pair of node indices.
type pair uint64

func pairOf(author, subject int32) pair {
	return pair(uint64(uint32(author))<<32 | uint64(uint32(subject)))
}

type rec struct {
	seq    uint64
	outPos int32 // its edge in out[author]
	inPos  int32 // its edge in in[subject]
	level  code
}

// edge is one record seen from one end: peer is the subject in out and the
// author in in. A withdrawn record stays, as level cNone.
type edge struct {
	peer  int32
	level code
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
		recs:  make(map[pair]rec),
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
	if g.introduces(g.nodes[a].state) {
		return true, g.update(-1, s)
	}
	return true, nil // the author introduces nobody: no level can move
}

// Load takes every record of rs as Add does, then recomputes every level
// in one full pass: the way to start from the records a node holds.
func (g *Graph) Load(rs []Record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.recs) == 0 {
		g.recs = make(map[pair]rec, len(rs))
	}
	for _, r := range rs {
		g.store(r)
	}
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
		for _, e := range g.in[x] {
			if w, hop := g.weight(e); w != WeightNone && hop < int(st.hop) {
				v.Introducers = append(v.Introducers, g.names[e.peer])
			}
		}
		slices.Sort(v.Introducers)
	}
	return v
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
	c, ok := recordCode(r.Level)
	if !ok || r.Author == "" || r.Subject == "" || r.Author == r.Subject {
		return -1, -1, false, false
	}
	a, s = g.intern(r.Author), g.intern(r.Subject)
	k := pairOf(a, s)
	old, found := g.recs[k]
	if !found {
		g.recs[k] = rec{seq: r.Seq, outPos: int32(len(g.out[a])), inPos: int32(len(g.in[s])), level: c}
		g.out[a] = append(g.out[a], edge{peer: s, level: c})
		g.in[s] = append(g.in[s], edge{peer: a, level: c})
	} else {
		if r.Seq < old.seq || r.Seq == old.seq && caution(c) <= caution(old.level) {
			return a, s, false, false
		}
		moved = c != old.level
		old.seq, old.level = r.Seq, c
		g.recs[k] = old
		if !moved {
			return a, s, true, false
		}
		g.out[a][old.outPos].level = c
		g.in[s][old.inPos].level = c
	}
	if a == self {
		g.nodes[s].mine = c
	}
	return a, s, true, true
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

// weight is the weight of the introduction in-edge e makes, and the hop of
// its introducer: min(power of the introducer, strength of the record).
func (g *Graph) weight(e edge) (Weight, int) {
	s := strength(e.level)
	if s == WeightNone {
		return WeightNone, 0
	}
	a := g.nodes[e.peer].state
	if !g.introduces(a) {
		return WeightNone, 0
	}
	return min(a.power, s), int(a.hop)
}

// eval decides whether candidate y is web from the introducers at hop ≤ h:
// ≥ 1 full or ≥ 3 marginal introductions make it web at hop h+1, with power
// one step weaker than its strongest introduction.
func (g *Graph) eval(y int32, h int) (state, bool) {
	var best Weight
	n := 0
	for _, e := range g.in[y] {
		w, hop := g.weight(e)
		if w == WeightNone || hop > h {
			continue
		}
		n++
		best = max(best, w)
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
		g.nodes[x].state = g.base(int32(x))
	}
	for h := 1; h < g.depth; h++ {
		more := false
		for x := range g.nodes {
			y := int32(x)
			if g.nodes[y].level != cUnknown || g.base(y).level != cUnknown {
				continue
			}
			if st, ok := g.eval(y, h); ok {
				g.nodes[y].state = st
				more = more || g.introduces(st)
			}
		}
		if !more {
			break
		}
	}
}
