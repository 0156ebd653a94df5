package trust

import (
	"maps"
	"slices"
)

// reference computes every node's verdict straight from the rule in the
// package comment, with none of the Graph's machinery: a plain list of
// records, maps, and every layer up to the depth limit (no early stop).
// The tests hold the Graph to it.
func reference(selfID string, depth int, records []Record, blocked map[string]bool) map[string]Verdict {
	type key struct{ author, subject string }
	cautious := []Level{Verified, Trusted, Marginal, None, Distrusted} // most cautious last
	latest := make(map[key]Record)
	known := map[string]bool{selfID: true}
	for _, r := range records {
		if !r.Level.IsRecordLevel() || r.Author == "" || r.Subject == "" || r.Author == r.Subject {
			continue
		}
		known[r.Author], known[r.Subject] = true, true
		k := key{r.Author, r.Subject}
		old, ok := latest[k]
		if !ok || r.Seq > old.Seq ||
			r.Seq == old.Seq && slices.Index(cautious, r.Level) > slices.Index(cautious, old.Level) {
			latest[k] = r
		}
	}
	for id := range blocked { // once blocked, known, even if unblocked since
		known[id] = true
	}
	strengthOf := map[Level]Weight{Verified: WeightFull, Trusted: WeightFull, Marginal: WeightMarginal}

	v := make(map[string]Verdict)
	for x := range known {
		mine, ok := latest[key{selfID, x}]
		switch {
		case x == selfID:
			v[x] = Verdict{Level: Self}
		case blocked[x]:
			v[x] = Verdict{Level: Blocked}
		case ok && mine.Level != None:
			v[x] = Verdict{Level: mine.Level, Hops: 1, Power: strengthOf[mine.Level]}
		default:
			v[x] = Verdict{Level: Unknown}
		}
	}
	for h := 1; h < depth; h++ {
		made := make(map[string]Verdict)
		for x := range known {
			if v[x].Level != Unknown {
				continue
			}
			var best Weight
			var intro []string
			for k, r := range latest {
				if k.subject != x || strengthOf[r.Level] == WeightNone {
					continue
				}
				a := v[k.author]
				if a.Level == Self || a.Power == WeightNone || a.Hops > h || a.Hops >= depth {
					continue
				}
				best = max(best, min(a.Power, strengthOf[r.Level]))
				intro = append(intro, k.author)
			}
			if best == WeightFull || len(intro) >= 3 {
				slices.Sort(intro)
				made[x] = Verdict{Level: Web, Hops: h + 1, Power: max(best, 1) - 1, Introducers: intro}
			}
		}
		maps.Copy(v, made)
	}
	return v
}
