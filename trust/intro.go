package trust

// intro is one introduction a node receives: its introducer, the
// introducer's hop, and its weight, min(power of the introducer, strength
// of the record).
type intro struct {
	author int32
	hop    uint8
	weight Weight
}

// A node's introductions (Graph.intros) are kept in step with every state
// and record, so that judging a node costs the introductions it has, not
// every record on it: a node vouched for by tens of thousands of strangers
// has a handful of introductions at most.

// introKey is how a node introduces: its power and hop if it introduces at
// all, the zero introKey if not.
type introKey struct {
	power Weight
	hop   uint8
}

func (g *Graph) key(st state) introKey {
	if !g.introduces(st) {
		return introKey{}
	}
	return introKey{st.power, st.hop}
}

// set gives x state st, and, if that changes how x introduces, rewrites the
// introductions x makes.
func (g *Graph) set(x int32, st state) {
	old := g.key(g.nodes[x].state)
	g.nodes[x].state = st
	k := g.key(st)
	if k == old {
		return
	}
	for _, e := range g.out[x] {
		g.introduce(x, e.subject, k, e.level)
	}
}

// introduce makes a's introduction of s agree with a's key k and a's
// record on s at level c: added, reweighed, or removed.
func (g *Graph) introduce(a, s int32, k introKey, c code) {
	w := min(k.power, strength(c))
	list := g.intros[s]
	for i := range list {
		if list[i].author != a {
			continue
		}
		if w == WeightNone {
			list[i] = list[len(list)-1]
			g.intros[s] = list[:len(list)-1]
		} else {
			list[i] = intro{author: a, hop: k.hop, weight: w}
		}
		return
	}
	if w != WeightNone {
		g.intros[s] = append(list, intro{author: a, hop: k.hop, weight: w})
	}
}
