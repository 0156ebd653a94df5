package trust

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

func newGraph(t testing.TB, self string, depth int) *Graph {
	t.Helper()
	g, err := New(Config{Self: self, Depth: depth})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// add adds records "author level subject", each one Seq higher than the last.
func add(t *testing.T, g *Graph, lines ...string) {
	t.Helper()
	for _, l := range lines {
		f := strings.Fields(l)
		seq++
		if taken, _ := g.Add(Record{Author: f[0], Level: Level(f[1]), Subject: f[2], Seq: seq}); !taken {
			t.Fatalf("%q not taken", l)
		}
	}
}

var seq uint64

func want(t *testing.T, g *Graph, id string, w Verdict) {
	t.Helper()
	if got := g.Level(id); !reflect.DeepEqual(got, w) {
		t.Errorf("Level(%s) = %+v, want %+v", id, got, w)
	}
}

// TestWorkedExample is DESIGN's acceptance example: A verifies B, B trusts
// C, C marks D marginal.
func TestWorkedExample(t *testing.T) {
	g := newGraph(t, "A", 0)
	add(t, g, "A verified B", "B trusted C", "C marginal D")
	want(t, g, "A", Verdict{Level: Self})
	want(t, g, "B", Verdict{Level: Verified, Hops: 1, Power: WeightFull})
	want(t, g, "C", Verdict{Level: Web, Hops: 2, Power: WeightMarginal, Introducers: []string{"B"}})
	want(t, g, "D", Verdict{Level: Unknown}) // one marginal introduction

	// A second web node of A's vouches for D: two marginal introductions.
	add(t, g, "A trusted B2", "B2 verified E", "E trusted D")
	want(t, g, "E", Verdict{Level: Web, Hops: 2, Power: WeightMarginal, Introducers: []string{"B2"}})
	want(t, g, "D", Verdict{Level: Unknown})

	// A third: D is web, with its introducers, and introduces nobody.
	add(t, g, "A verified B3", "B3 trusted F")
	seq++
	taken, changed := g.Add(Record{Author: "F", Subject: "D", Level: Marginal, Seq: seq})
	if !taken || !slices.Equal(changed, []string{"D"}) {
		t.Errorf("Add(F marginal D) = %v, %v; want true, [D]", taken, changed)
	}
	want(t, g, "D", Verdict{Level: Web, Hops: 3, Power: WeightNone, Introducers: []string{"C", "E", "F"}})
	add(t, g, "D verified G", "D verified H")
	want(t, g, "G", Verdict{Level: Unknown})

	// C withdraws: D falls back to unknown.
	seq++
	if _, changed := g.Add(Record{Author: "C", Subject: "D", Level: None, Seq: seq}); !slices.Equal(changed, []string{"D"}) {
		t.Errorf("withdrawal changed %v, want [D]", changed)
	}
	want(t, g, "D", Verdict{Level: Unknown})

	// A distrusts B: B keeps no power, and C (then D's other way) goes.
	seq++
	if _, changed := g.Add(Record{Author: "A", Subject: "B", Level: Distrusted, Seq: seq}); !slices.Equal(changed, []string{"B", "C"}) {
		t.Errorf("distrusting B changed %v, want [B C]", changed)
	}
	want(t, g, "B", Verdict{Level: Distrusted, Hops: 1})
	want(t, g, "C", Verdict{Level: Unknown})

	// Each tells every node with a level, and no unknown one.
	got := make(map[string]Level)
	g.Each(func(id string, l Level) { got[id] = l })
	wantEach := map[string]Level{"A": Self, "B": Distrusted, "B2": Trusted, "B3": Verified, "E": Web, "F": Web}
	if !maps.Equal(got, wantEach) {
		t.Errorf("Each: %v, want %v", got, wantEach)
	}
}

func TestRule(t *testing.T) {
	tests := []struct {
		name    string
		depth   int
		records []string
		blocked []string
		want    map[string]Verdict
	}{{
		name:    "three marginal owners make a powerless web node",
		records: []string{"A marginal M1", "A marginal M2", "A marginal M3", "M1 trusted X", "M2 verified X", "M3 marginal X", "X verified Y"},
		want: map[string]Verdict{
			"M1": {Level: Marginal, Hops: 1, Power: WeightMarginal},
			"X":  {Level: Web, Hops: 2, Introducers: []string{"M1", "M2", "M3"}},
			"Y":  {Level: Unknown},
		},
	}, {
		name:    "a full owner's marginal record is a marginal introduction",
		records: []string{"A trusted B", "B marginal X"},
		want:    map[string]Verdict{"X": {Level: Unknown}},
	}, {
		name:    "others' distrust counts neither way",
		records: []string{"A trusted B", "A trusted C", "B trusted X", "C distrusted X"},
		want:    map[string]Verdict{"X": {Level: Web, Hops: 2, Power: WeightMarginal, Introducers: []string{"B"}}},
	}, {
		name:    "self's distrusted node introduces nobody",
		records: []string{"A distrusted B", "B trusted X"},
		want:    map[string]Verdict{"B": {Level: Distrusted, Hops: 1}, "X": {Level: Unknown}},
	}, {
		name:    "self's record beats introductions",
		records: []string{"A trusted B", "B trusted X", "A marginal X"},
		want:    map[string]Verdict{"X": {Level: Marginal, Hops: 1, Power: WeightMarginal}},
	}, {
		name:    "a withdrawn record of self's leaves the node to the web",
		records: []string{"A trusted B", "B trusted X", "A marginal X", "A none X"},
		want:    map[string]Verdict{"X": {Level: Web, Hops: 2, Power: WeightMarginal, Introducers: []string{"B"}}},
	}, {
		name:    "blocked wins over self's record and introducers, and has no power",
		records: []string{"A trusted B", "A verified X", "B trusted X", "A trusted C", "C trusted X", "X trusted Y"},
		blocked: []string{"X"},
		want:    map[string]Verdict{"X": {Level: Blocked}, "Y": {Level: Unknown}},
	}, {
		name:    "self cannot be blocked; others' records on self change nothing",
		records: []string{"A trusted B", "B distrusted A"},
		blocked: []string{"A"},
		want:    map[string]Verdict{"A": {Level: Self}},
	}, {
		name:    "web at hop 3 from introducers at hops 1 and 2",
		records: []string{"A trusted B", "B trusted C", "A marginal M1", "A marginal M2", "C marginal X", "M1 marginal X", "M2 trusted X"},
		want:    map[string]Verdict{"X": {Level: Web, Hops: 3, Introducers: []string{"C", "M1", "M2"}}},
	}, {
		name:    "a node at hop == depth introduces nobody",
		depth:   2,
		records: []string{"A trusted B", "B trusted C", "A marginal M1", "A marginal M2", "C marginal X", "M1 marginal X", "M2 trusted X"},
		want: map[string]Verdict{
			"C": {Level: Web, Hops: 2, Power: WeightMarginal, Introducers: []string{"B"}},
			"X": {Level: Unknown},
		},
	}, {
		name:    "depth 1: no web",
		depth:   1,
		records: []string{"A trusted B", "B trusted C"},
		want:    map[string]Verdict{"C": {Level: Unknown}},
	}, {
		name:    "introducers are only the closer ones",
		records: []string{"A trusted B", "A trusted C", "B trusted X", "C trusted Y", "Y marginal X", "X marginal Y"},
		want: map[string]Verdict{
			"X": {Level: Web, Hops: 2, Power: WeightMarginal, Introducers: []string{"B"}},
			"Y": {Level: Web, Hops: 2, Power: WeightMarginal, Introducers: []string{"C"}},
		},
	}, {
		name:    "a later record of self's on a node replaces the earlier",
		records: []string{"A verified B", "A marginal B"},
		want:    map[string]Verdict{"B": {Level: Marginal, Hops: 1, Power: WeightMarginal}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Incrementally, blocks first and last, and in one full pass.
			for _, way := range []string{"block first", "block last", "load"} {
				g := newGraph(t, "A", tt.depth)
				var rs []Record
				for i, l := range tt.records {
					f := strings.Fields(l)
					rs = append(rs, Record{Author: f[0], Level: Level(f[1]), Subject: f[2], Seq: uint64(i + 1)})
				}
				if way != "block last" {
					for _, id := range tt.blocked {
						g.Block(id, true)
					}
				}
				if way == "load" {
					g.Load(rs)
				} else {
					for _, r := range rs {
						g.Add(r)
					}
				}
				if way == "block last" {
					for _, id := range tt.blocked {
						g.Block(id, true)
					}
				}
				for id, w := range tt.want {
					if got := g.Level(id); !reflect.DeepEqual(got, w) {
						t.Errorf("%s: Level(%s) = %+v, want %+v", way, id, got, w)
					}
				}
			}
		})
	}
}

func TestAddOrder(t *testing.T) {
	g := newGraph(t, "A", 0)
	r := Record{Author: "A", Subject: "B", Level: Trusted, Seq: 5}
	tests := []struct {
		r         Record
		wantTaken bool
		want      Level
	}{
		{r, true, Trusted},
		{r, false, Trusted}, // again
		{Record{Author: "A", Subject: "B", Level: Verified, Seq: 4}, false, Trusted},     // older
		{Record{Author: "A", Subject: "B", Level: Verified, Seq: 5}, false, Trusted},     // same Seq, less cautious
		{Record{Author: "A", Subject: "B", Level: Marginal, Seq: 5}, true, Marginal},     // same Seq, more cautious
		{Record{Author: "A", Subject: "B", Level: Marginal, Seq: 6}, true, Marginal},     // newer, same level
		{Record{Author: "A", Subject: "B", Level: None, Seq: 7}, true, Unknown},          // withdrawn
		{Record{Author: "A", Subject: "B", Level: Verified, Seq: 6}, false, Unknown},     // older than the withdrawal
		{Record{Author: "A", Subject: "B", Level: Web, Seq: 9}, false, Unknown},          // not a record level
		{Record{Author: "B", Subject: "B", Level: Verified, Seq: 9}, false, Unknown},     // about itself
		{Record{Author: "", Subject: "B", Level: Verified, Seq: 9}, false, Unknown},      // no author
		{Record{Author: "A", Subject: "B", Level: Distrusted, Seq: 8}, true, Distrusted}, // back
	}
	for i, tt := range tests {
		if taken, _ := g.Add(tt.r); taken != tt.wantTaken {
			t.Errorf("%d: Add(%+v) taken = %v, want %v", i, tt.r, taken, tt.wantTaken)
		}
		if got := g.Level("B").Level; got != tt.want {
			t.Errorf("%d: after Add(%+v), B is %s, want %s", i, tt.r, got, tt.want)
		}
	}
}

func TestBlock(t *testing.T) {
	g := newGraph(t, "A", 0)
	add(t, g, "A verified B", "B trusted C", "C trusted D")
	if got := g.Block("B", true); !slices.Equal(got, []string{"B", "C"}) {
		t.Errorf("Block(B) changed %v, want [B C]", got)
	}
	if got := g.Block("B", true); got != nil {
		t.Errorf("Block(B) again changed %v", got)
	}
	if got := g.Block("Z", false); got != nil {
		t.Errorf("unblocking a stranger changed %v", got)
	}
	if got := g.Block("Z", true); !slices.Equal(got, []string{"Z"}) {
		t.Errorf("Block(Z) changed %v, want [Z]", got)
	}
	if got := g.Block("B", false); !slices.Equal(got, []string{"B", "C"}) {
		t.Errorf("unblocking B changed %v, want [B C]", got)
	}
	want(t, g, "C", Verdict{Level: Web, Hops: 2, Power: WeightMarginal, Introducers: []string{"B"}})
	wantCounts := map[Level]int{Self: 1, Verified: 1, Web: 1, Unknown: 1, Blocked: 1}
	if got := g.Counts(); !reflect.DeepEqual(got, wantCounts) {
		t.Errorf("Counts() = %v, want %v", got, wantCounts)
	}
}

func TestConfig(t *testing.T) {
	_, err := New(Config{Depth: -1})
	if err == nil || !strings.Contains(err.Error(), "Self") || !strings.Contains(err.Error(), "Depth") {
		t.Errorf("New(bad) = %v, want both problems", err)
	}
	if g, err := New(Config{Self: "A"}); err != nil || g.depth != DefaultDepth {
		t.Errorf("New(zero depth) = %v, depth %d", err, g.depth)
	}
	if got := DefaultConfig().Depth; got != DefaultDepth {
		t.Errorf("DefaultConfig().Depth = %d", got)
	}
	for _, s := range []string{"verified", "trusted", "marginal", "distrusted", "none"} {
		if l, err := ParseLevel(s); err != nil || string(l) != s {
			t.Errorf("ParseLevel(%q) = %q, %v", s, l, err)
		}
	}
	for _, s := range []string{"web", "self", "", "Trusted"} {
		if _, err := ParseLevel(s); err == nil {
			t.Errorf("ParseLevel(%q) took it", s)
		}
	}
}

// randomRecords returns n records over nodes n0 … n(nodes-1), self being
// n0: a third of self's, Seqs small enough to collide.
func randomRecord(rng *rand.Rand, nodes int) Record {
	levels := []Level{Verified, Trusted, Marginal, Marginal, Distrusted, None}
	a := rng.IntN(nodes)
	if rng.IntN(6) == 0 {
		a = 0
	}
	return Record{
		Author:  fmt.Sprintf("n%d", a),
		Subject: fmt.Sprintf("n%d", rng.IntN(nodes)),
		Level:   levels[rng.IntN(len(levels))],
		Seq:     uint64(rng.IntN(12)),
	}
}

// verdicts returns every node's verdict in g.
func verdicts(g *Graph) map[string]Verdict {
	v := make(map[string]Verdict)
	for _, id := range g.names {
		v[id] = g.Level(id)
	}
	return v
}

// TestIncremental: after any sequence of random changes, the levels kept
// up to date incrementally are those of one full pass over the same
// records, and the rule's reference; each change reports exactly the nodes
// that moved.
func TestIncremental(t *testing.T) {
	for seed := range uint64(40) {
		depth := 1 + int(seed%5)
		nodes := 12 + int(seed%4)*8
		rng := rand.New(rand.NewPCG(seed, 14))
		g := newGraph(t, "n0", depth)
		var rs []Record
		blocked := make(map[string]bool)
		before := verdicts(g)
		for step := range 300 {
			var changed []string
			if rng.IntN(12) == 0 {
				id := fmt.Sprintf("n%d", rng.IntN(nodes))
				blocked[id] = !blocked[id]
				changed = g.Block(id, blocked[id])
			} else {
				r := randomRecord(rng, nodes)
				rs = append(rs, r)
				_, changed = g.Add(r)
			}
			after := verdicts(g)
			var moved []string
			for id, v := range after {
				b, ok := before[id]
				if !ok {
					b = Verdict{Level: Unknown} // a node is unknown before it is seen
				}
				if b.Level != v.Level || b.Hops != v.Hops || b.Power != v.Power {
					moved = append(moved, id)
				}
			}
			slices.Sort(moved)
			if !slices.Equal(changed, moved) {
				t.Fatalf("seed %d step %d: changed %v, but %v moved", seed, step, changed, moved)
			}
			before = after
			if step%10 != 9 {
				continue
			}
			full := newGraph(t, "n0", depth)
			for id, b := range blocked {
				full.Block(id, b)
			}
			full.Load(rs)
			// And in two loads, the first over records added one by one.
			split := newGraph(t, "n0", depth)
			k := rng.IntN(len(rs) + 1)
			for _, r := range rs[:k/2] {
				split.Add(r)
			}
			split.Load(rs[k/2 : k])
			for id, b := range blocked {
				split.Block(id, b)
			}
			split.Load(rs[k:])
			ref := reference("n0", depth, rs, blocked)
			for id, v := range after {
				if w := full.Level(id); !reflect.DeepEqual(v, w) {
					t.Fatalf("seed %d step %d: %s incrementally %+v, in a full pass %+v", seed, step, id, v, w)
				}
				if w := split.Level(id); !reflect.DeepEqual(v, w) {
					t.Fatalf("seed %d step %d: %s incrementally %+v, in two loads %+v", seed, step, id, v, w)
				}
				if w := ref[id]; !reflect.DeepEqual(v, w) {
					t.Fatalf("seed %d step %d: %s is %+v, the reference says %+v", seed, step, id, v, w)
				}
			}
			if len(after) != len(ref) {
				t.Fatalf("seed %d step %d: %d nodes, the reference has %d", seed, step, len(after), len(ref))
			}
			g.Recompute()
			if got := verdicts(g); !reflect.DeepEqual(got, after) {
				t.Fatalf("seed %d step %d: Recompute moved levels", seed, step)
			}
		}
	}
}

// TestDeterminism: the same records in any order give the same levels.
func TestDeterminism(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var rs []Record
	for range 400 {
		rs = append(rs, randomRecord(rng, 25))
	}
	var first map[string]Verdict
	for range 10 {
		rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		g := newGraph(t, "n0", 0)
		for _, r := range rs {
			g.Add(r)
		}
		got := verdicts(g)
		if first == nil {
			first = got
		} else if !reflect.DeepEqual(got, first) {
			t.Fatal("another order gave other levels")
		}
	}
}

// TestConcurrent: readers and a writer at once (run with -race).
func TestConcurrent(t *testing.T) {
	g := newGraph(t, "n0", 0)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 0))
			for range 500 {
				switch i {
				case 0:
					g.Add(randomRecord(rng, 30))
				case 1:
					g.Block(fmt.Sprintf("n%d", rng.IntN(30)), rng.IntN(2) == 0)
				case 2:
					g.Level(fmt.Sprintf("n%d", rng.IntN(30)))
				default:
					g.Counts()
				}
			}
		})
	}
	wg.Wait()
}

// TestImports: trust is pure, standard library only.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v\n%s", err, out)
	}
	if deps := strings.Fields(string(out)); !slices.Equal(deps, []string{"github.com/thingtracker/ttn/trust"}) {
		t.Errorf("trust depends on %v; it must stay pure", deps)
	}
}

// TestIncrementalLarge: the same property on a larger network, with the
// changes aimed where they move most: self's records, introducers'
// records, and blocks.
func TestIncrementalLarge(t *testing.T) {
	const nodes, records = 3000, 30_000
	rng := rand.New(rand.NewPCG(7, 14))
	id := func(i int) string { return fmt.Sprintf("n%d", i) }
	levels := []Level{Verified, Trusted, Trusted, Marginal, Marginal, Distrusted, None}
	random := func(author int) Record {
		s := (author + rng.IntN(41) - 20 + nodes) % nodes // neighbours on a ring
		if rng.IntN(2) == 0 {
			s = rng.IntN(nodes / 10) // the popular tenth
		}
		return Record{Author: id(author), Subject: id(s), Level: levels[rng.IntN(len(levels))], Seq: uint64(rng.IntN(1 << 20))}
	}
	var rs []Record
	for range 40 {
		rs = append(rs, random(0))
	}
	for len(rs) < records {
		rs = append(rs, random(1+rng.IntN(nodes-1)))
	}
	g := newGraph(t, id(0), 0)
	g.Load(rs)
	blocked := make(map[string]bool)
	var intro []int // the introducers, refreshed now and then
	for step := range 3000 {
		if step%25 == 0 {
			intro = intro[:0]
			for i, x := range g.names {
				if v := g.Level(x); v.Power != WeightNone && v.Hops < g.depth {
					intro = append(intro, i)
				}
			}
		}
		switch n := rng.IntN(20); {
		case n < 3:
			r := random(0)
			rs = append(rs, r)
			g.Add(r)
		case n < 4:
			x := id(rng.IntN(nodes))
			blocked[x] = !blocked[x]
			g.Block(x, blocked[x])
		case n < 12 && len(intro) > 0: // an introducer, or one lately
			a := 0
			fmt.Sscanf(g.names[intro[rng.IntN(len(intro))]], "n%d", &a)
			r := random(a)
			rs = append(rs, r)
			g.Add(r)
		default:
			r := random(1 + rng.IntN(nodes-1))
			rs = append(rs, r)
			g.Add(r)
		}
		if step%250 != 249 {
			continue
		}
		full := newGraph(t, id(0), 0)
		for x, b := range blocked {
			full.Block(x, b)
		}
		full.Load(rs)
		got, want := verdicts(g), verdicts(full)
		if !reflect.DeepEqual(got, want) {
			for x, v := range got {
				if !reflect.DeepEqual(v, want[x]) {
					t.Errorf("step %d: %s incrementally %+v, in a full pass %+v", step, x, v, want[x])
				}
			}
			t.FailNow()
		}
		if step == 2999 {
			t.Logf("levels at the end: %v", g.Counts())
		}
	}
}
