package trust

import "slices"

// update brings the levels up to date after one change, recomputing only
// what the change can reach, and returns the nodes whose state moved,
// sorted. seed0 (or -1) is a node whose own view changed (self's record on
// it, or the block list); seed1 (or -1) is the subject of a changed record
// by an introducer.
//
// It runs recompute's layers over a frontier instead of every node. The
// invariant: entering layer h, every node whose state has hop ≤ h is
// correct, because its state depends only on introducers at hops < h, and
// any of those that moved queued their out-neighbours at a lower layer. A
// queued node is settled if it is web at hop ≤ h; otherwise it is evaluated
// at layer h: web at hop h+1, or left unknown and queued again for layer
// h+1, since whatever moved below it may still make it web higher up. A node
// whose introducing (power, hop) differs from its state before the update
// queues its out-neighbours for the next layer, which is the lowest layer
// its old or new introductions count at. g.set keeps every introduction
// in step as states move, so an evaluation at layer h sees the introducers
// at hops ≤ h as they now are.
func (g *Graph) update(seed0, seed1 int32) []string {
	g.tgen++
	g.qgen++
	if g.tgen == 0 || g.qgen == 0 { // wrapped: forget every stamp
		clear(g.touched)
		clear(g.queued)
		g.tgen, g.qgen = 1, 1
	}
	g.olds = g.olds[:0]
	g.next = g.next[:0]

	if seed0 >= 0 {
		old := g.touch(seed0)
		st := g.base(seed0)
		g.set(seed0, st)
		if st.level == cUnknown {
			g.queue(seed0)
		}
		g.queueOutIfMoved(seed0, old)
	}
	if seed1 >= 0 {
		g.queue(seed1)
	}

	for h := 1; h < g.depth && len(g.next) > 0; h++ {
		g.cur, g.next = g.next, g.cur[:0]
		g.qgen++
		for _, y := range g.cur {
			n := &g.nodes[y]
			if n.level == cWeb && int(n.hop) <= h {
				continue // settled below this layer
			}
			if g.base(y).level != cUnknown {
				continue // self's view decides, and it is up to date
			}
			old := g.touch(y)
			st, ok := g.eval(y, h)
			g.set(y, st)
			if !ok {
				g.queue(y) // may still be web higher up; unknown if not
			}
			g.queueOutIfMoved(y, old)
		}
	}

	var changed []string
	for _, x := range g.olds {
		if g.nodes[x].state != g.prev[x] {
			changed = append(changed, g.names[x])
		}
	}
	slices.Sort(changed)
	return changed
}

// touch saves x's state before the update, once, and returns it.
func (g *Graph) touch(x int32) state {
	if g.touched[x] != g.tgen {
		g.touched[x] = g.tgen
		g.prev[x] = g.nodes[x].state
		g.olds = append(g.olds, x)
	}
	return g.prev[x]
}

// queue adds x to the next layer's frontier, once.
func (g *Graph) queue(x int32) {
	if g.queued[x] != g.qgen {
		g.queued[x] = g.qgen
		g.next = append(g.next, x)
	}
}

// queueOutIfMoved queues x's subjects if x introduces differently from the
// way it did before the update (old).
func (g *Graph) queueOutIfMoved(x int32, old state) {
	if g.key(old) == g.key(g.nodes[x].state) {
		return
	}
	for _, e := range g.out[x] {
		g.queue(e.subject)
	}
}
