package trust

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/thingtracker/ttn/internal/cputime"
)

// The benchmark network: benchNodes nodes and benchRecords trust records,
// each on its own (author, subject) pair.
//
//   - Node IDs are 52-character strings shaped like libp2p Ed25519 peer IDs
//     ("12D3KooW" and 44 base58 characters). Self is node 0.
//   - Self has benchMine records: 15 verified, 15 trusted, 12 marginal and 8
//     distrusted, on nodes drawn at random.
//   - Everyone else writes a power-law number of records: Pareto (α = 2,
//     from 5), so the mean is 10, the median 7, and a few write thousands
//     (at most 5,000); the Pareto draws are scaled to make benchRecords in
//     all. Each subject is, half the time, a neighbour of the author on a
//     ring (within ±50: the small world of people who know each other), and
//     half the time drawn from a Zipf law (s = 1.1) over the nodes in a
//     random order, so a few nodes are vouched for by thousands.
//   - Levels: verified 20%, trusted 35%, marginal 30%, distrusted 10%,
//     none 5%; seqs grow.
const (
	benchNodes   = 100_000
	benchRecords = 1_000_000
	benchMine    = 50
)

type benchNet struct {
	ids     []string
	records []Record
	seq     uint64 // the highest seq used
}

var (
	benchOnce sync.Once
	bench     benchNet
)

func benchNetwork() *benchNet {
	benchOnce.Do(func() {
		rng := rand.New(rand.NewPCG(2026, 14))
		const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
		ids := make([]string, benchNodes)
		for i := range ids {
			b := []byte("12D3KooW")
			for range 44 {
				b = append(b, alphabet[rng.IntN(len(alphabet))])
			}
			ids[i] = string(b)
		}
		order := rng.Perm(benchNodes)
		popular := rand.NewZipf(rng, 1.1, 1, benchNodes-1)

		rs := make([]Record, 0, benchRecords)
		var seq uint64
		mine := []Level{Verified, Trusted, Marginal, Distrusted}
		counts := []int{15, 15, 12, 8}
		picked := map[int]bool{0: true}
		for i, l := range mine {
			for range counts[i] {
				s := 0
				for picked[s] {
					s = rng.IntN(benchNodes)
				}
				picked[s] = true
				seq++
				rs = append(rs, Record{Author: ids[0], Subject: ids[s], Level: l, Seq: seq})
			}
		}

		degree := make([]float64, benchNodes)
		var sum float64
		for a := 1; a < benchNodes; a++ {
			degree[a] = min(5/math.Sqrt(1-rng.Float64()), 5000) // Pareto α = 2 from 5
			sum += degree[a]
		}
		scale := float64(benchRecords-len(rs)) / sum
		levels := []Level{Verified, Verified, Verified, Verified, Trusted, Trusted, Trusted, Trusted, Trusted, Trusted, Trusted,
			Marginal, Marginal, Marginal, Marginal, Marginal, Marginal, Distrusted, Distrusted, None}
		seen := make(map[int]bool)
		for a := 1; a < benchNodes && len(rs) < benchRecords; a++ {
			n := int(degree[a]*scale + rng.Float64()) // rounded at random: the total comes out right
			if a == benchNodes-1 {
				n = benchRecords - len(rs)
			}
			clear(seen)
			for tries := 0; len(seen) < n && tries < 4*n; tries++ {
				var s int
				if rng.IntN(2) == 0 {
					s = (a + rng.IntN(101) - 50 + benchNodes) % benchNodes
				} else {
					s = order[popular.Uint64()]
				}
				if s == a || s == 0 || seen[s] {
					continue
				}
				seen[s] = true
				seq++
				rs = append(rs, Record{Author: ids[a], Subject: ids[s], Level: levels[rng.IntN(len(levels))], Seq: seq})
			}
		}
		bench = benchNet{ids: ids, records: rs, seq: seq}
	})
	return &bench
}

// loaded returns a Graph holding the benchmark network, and says what it
// holds.
func loaded(b *testing.B) (*Graph, *benchNet) {
	b.Helper()
	net := benchNetwork()
	g := newGraph(b, net.ids[0], 0)
	g.Load(net.records)
	return g, net
}

func describe(b *testing.B, g *Graph) {
	b.Helper()
	degree := make([]int, 0, len(g.out))
	pairs := 0
	for _, out := range g.out {
		degree = append(degree, len(out))
		pairs += len(out)
	}
	slices.Sort(degree)
	b.Logf("%d nodes, %d records (%d pairs), depth %d; records per author: median %d, p99 %d, max %d; levels %v",
		len(g.nodes), benchRecords, pairs, g.depth,
		degree[len(degree)/2], degree[len(degree)*99/100], degree[len(degree)-1], g.Counts())
}

// BenchmarkFull: from the records to every level. load is what a starting
// node pays (index the records, then one full pass); recompute the pass
// alone.
func BenchmarkFull(b *testing.B) {
	net := benchNetwork()
	b.Run("load", func(b *testing.B) {
		b.ReportAllocs()
		var g *Graph
		cpu := cputime.Process()
		for b.Loop() {
			g = newGraph(b, net.ids[0], 0)
			g.Load(net.records)
		}
		b.StopTimer()
		b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "MiB-heap")
		describe(b, g)
		runtime.KeepAlive(g)
	})
	b.Run("recompute", func(b *testing.B) {
		g, _ := loaded(b)
		b.ReportAllocs()
		for b.Loop() {
			g.Recompute()
		}
	})
}

// BenchmarkIncremental: one record, toggled between two levels so that
// every op changes something, against the full pass measured in the same
// run: x-load is a Load's time (index and full pass) over one op's,
// x-recompute the full pass's alone.
//
//   - self-hub: self's record on its verified node with the most records,
//     between verified and distrusted: all it introduces, and what they
//     introduce, moves.
//   - self-biggest: self's record on the node with the most records of
//     all (1,377 here), not its own, between verified and none: the worst
//     case, where hundreds of levels move.
//   - self-new: self's record on the node with the most introductions
//     that is not its own, between trusted and none.
//   - introducer: a record by self's trusted node with the most records,
//     on a stranger, between trusted and none.
//   - far: a record between two unknown nodes, between trusted and
//     marginal: no level can move.
func BenchmarkIncremental(b *testing.B) {
	start := time.Now()
	g, net := loaded(b)
	load := time.Since(start)
	pass := time.Duration(1 << 62)
	for range 3 {
		start := time.Now()
		g.Recompute()
		pass = min(pass, time.Since(start))
	}

	var hub, biggest, trusted, popular, far int32 = -1, -1, -1, -1, -1
	for _, e := range g.out[self] {
		switch x, n := e.subject, g.nodes[e.subject]; {
		case n.level == cVerified && (hub < 0 || len(g.out[x]) > len(g.out[hub])):
			hub = x
		case n.level == cTrusted && (trusted < 0 || len(g.out[x]) > len(g.out[trusted])):
			trusted = x
		}
	}
	for x := range g.nodes {
		y := int32(x)
		if g.nodes[y].level == cWeb && (popular < 0 || len(g.in[y]) > len(g.in[popular])) {
			popular = y
		}
		if g.nodes[y].level == cUnknown && (biggest < 0 || len(g.out[y]) > len(g.out[biggest])) {
			biggest = y
		}
		if far < 0 && x > 0 && g.nodes[y].level == cUnknown && len(g.out[y]) > 0 {
			far = y
		}
	}
	stranger := int32(len(g.nodes) - 1)
	for g.nodes[stranger].level != cUnknown {
		stranger--
	}
	cases := []struct {
		name            string
		author, subject int32
		level1, level2  Level
	}{
		{"self-hub", self, hub, Verified, Distrusted},
		{"self-biggest", self, biggest, Verified, None},
		{"self-new", self, popular, Trusted, None},
		{"introducer", trusted, stranger, Trusted, None},
		{"far", far, g.out[far][0].subject, Trusted, Marginal},
	}
	seq := net.seq
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			r := Record{Author: g.names[c.author], Subject: g.names[c.subject]}
			moved := 0
			for i := 0; b.Loop(); i++ {
				seq++
				r.Seq, r.Level = seq, c.level1
				if i%2 == 1 {
					r.Level = c.level2
				}
				_, changed := g.Add(r)
				moved = max(moved, len(changed))
			}
			perOp := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(load)/float64(perOp), "x-load")
			b.ReportMetric(float64(pass)/float64(perOp), "x-recompute")
			b.ReportMetric(float64(moved), "max-moved")
		})
	}
	b.Logf("full computation: load %v, recompute %v", load, pass)
}
