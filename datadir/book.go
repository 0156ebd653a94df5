package datadir

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/trust"
	"github.com/thingtracker/ttn/view"
)

// Book is what the trust and flag records a dir holds say (DESIGN.md,
// "Trust"): every node's trust level, computed by package trust from the
// standing trust records and the dir's local block list, and the standing
// flags on every target. Apply keeps it current as records are stored. Its
// methods may be called concurrently.
type Book struct {
	path string // the block list
	g    *trust.Graph

	mu      sync.RWMutex
	keys    map[[32]byte]trust.Level      // nodes at a level other than unknown, by key
	flags   map[string]map[string]flagRec // target key → author → its standing flag
	made    map[string][]string           // author → the targets it flags
	blocked map[string]bool
}

// flagRec is one author's standing flag on a target; a withdrawn flag is
// kept (Withdraw set) to hold its seq against older records.
type flagRec struct {
	seq  uint64
	id   topics.ID
	flag topics.Flag
}

// blockedFile holds the local block list: node IDs whose announcements
// this node neither stores nor forwards. It is never announced.
const blockedFile = "blocked"

// DefaultTrustDepth is how many hops a web of trust reaches (--trust-depth).
const DefaultTrustDepth = 3

// OpenBook reads the dir's standing trust and flag records and its block
// list. depth is the web's hop limit (DefaultTrustDepth when 0).
func (c *Dir) OpenBook(ctx context.Context, depth int) (*Book, error) {
	if depth == 0 {
		depth = DefaultTrustDepth
	}
	g, err := trust.New(trust.Config{Self: c.ID.ID, Depth: depth})
	if err != nil {
		return nil, err
	}
	b := &Book{path: filepath.Join(c.Path, blockedFile), g: g, keys: make(map[[32]byte]trust.Level),
		flags: make(map[string]map[string]flagRec), made: make(map[string][]string), blocked: make(map[string]bool)}
	var ids []string
	if err := readJSON(b.path, &ids); err != nil {
		return nil, fmt.Errorf("block list: %w", err)
	}
	var rs []trust.Record
	err = c.Log.Records(ctx, func(a *topics.Announcement) error {
		if r, ok := trustRecord(a); ok {
			rs = append(rs, r)
		} else if a.Payload.Flag != nil {
			b.putFlag(a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	g.Load(rs)
	for _, id := range ids {
		b.blocked[id] = true
		g.Block(id, true)
	}
	g.Each(func(id string, l trust.Level) {
		if k, err := topics.NodeKey(id); err == nil {
			b.keys[[32]byte(k)] = l
		}
	})
	return b, nil
}

// trustRecord returns a stored trust record as package trust takes it.
func trustRecord(a *topics.Announcement) (trust.Record, bool) {
	t := a.Payload.Trust
	if a.Payload.Kind != topics.KindTrust || t == nil {
		return trust.Record{}, false
	}
	return trust.Record{Author: a.Payload.Author, Subject: t.Subject, Level: trust.Level(t.Level), Seq: a.Payload.Seq}, true
}

// Apply takes a stored announcement: a trust or flag record updates the
// book (if it is its author's latest on its subject or target); any other
// kind changes nothing. It returns the nodes whose level changed.
func (b *Book) Apply(a *topics.Announcement) (changed []string) {
	if r, ok := trustRecord(a); ok {
		_, changed = b.g.Add(r)
		b.relevel(changed)
		return changed
	}
	if a.Payload.Kind == topics.KindFlag && a.Payload.Flag != nil {
		b.mu.Lock()
		b.putFlag(a)
		b.mu.Unlock()
	}
	return nil
}

// putFlag keeps a flag record if it is its author's latest on its target
// (of two with one seq, a forked chain's, the first stays).
func (b *Book) putFlag(a *topics.Announcement) {
	target, author := a.Payload.Flag.Target.Key(), a.Payload.Author
	m := b.flags[target]
	if m == nil {
		m = make(map[string]flagRec)
		b.flags[target] = m
	}
	old, ok := m[author]
	if ok && old.seq >= a.Payload.Seq {
		return
	}
	m[author] = flagRec{seq: a.Payload.Seq, id: a.ID, flag: *a.Payload.Flag}
	if !ok {
		b.made[author] = append(b.made[author], target)
	}
}

// relevel updates the levels by key of the nodes whose level changed.
func (b *Book) relevel(ids []string) {
	if len(ids) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		k, err := topics.NodeKey(id)
		if err != nil {
			continue
		}
		if l := b.g.Level(id).Level; l == trust.Unknown {
			delete(b.keys, [32]byte(k))
		} else {
			b.keys[[32]byte(k)] = l
		}
	}
}

// Level returns what a node is to this one, and why.
func (b *Book) Level(id string) trust.Verdict { return b.g.Level(id) }

// KeyLevel returns the level of the node with raw public key k: cheap, for
// every message a node validates.
func (b *Book) KeyLevel(k [32]byte) trust.Level {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if l, ok := b.keys[k]; ok {
		return l
	}
	return trust.Unknown
}

// Counts returns how many nodes the book knows at each level.
func (b *Book) Counts() map[trust.Level]int { return b.g.Counts() }

// Trusted lists the nodes at the levels given.
func (b *Book) Trusted(levels ...trust.Level) []string {
	var out []string
	b.g.Each(func(id string, l trust.Level) {
		if slices.Contains(levels, l) {
			out = append(out, id)
		}
	})
	slices.Sort(out)
	return out
}

// Block puts a node on the local block list (or takes it off) and saves
// the list. It returns the nodes whose level changed.
func (b *Book) Block(id string, blocked bool) ([]string, error) {
	if _, err := topics.NodeKey(id); err != nil {
		return nil, err
	}
	b.mu.Lock()
	if b.blocked[id] == blocked {
		b.mu.Unlock()
		return nil, nil
	}
	ids := []string{}
	for other := range b.blocked {
		if other != id {
			ids = append(ids, other)
		}
	}
	if blocked {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	err := writeJSON(b.path, ids)
	if err == nil {
		if blocked {
			b.blocked[id] = true
		} else {
			delete(b.blocked, id)
		}
	}
	b.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("block list: %w", err)
	}
	changed := b.g.Block(id, blocked)
	b.relevel(changed)
	return changed, nil
}

// Blocked lists the block list, sorted.
func (b *Book) Blocked() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	ids := make([]string, 0, len(b.blocked))
	for id := range b.blocked {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// counts reports whether a flag by a node at level l counts, and whether
// alone (a node at a strong level is enough to flag).
func counts(l trust.Level) (counting, alone bool) {
	switch l {
	case trust.Self, trust.Verified, trust.Trusted:
		return true, true
	case trust.Marginal, trust.Web:
		return true, false
	}
	return false, false
}

// flaggedBy is how many counting flags flag a target: one by self, a
// verified or a trusted node, or three by others.
const flaggedBy = 3

// Flags returns the standing flags on the targets given (topics.FlagTarget
// keys) and whether any of them is flagged, by the rule of DESIGN.md: a
// target is flagged by one counting flag of self, a verified or a trusted
// node, or by three of marginal or web nodes.
func (b *Book) Flags(targets ...string) view.Flags {
	out := view.Flags{}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, target := range targets {
		m := b.flags[target]
		weak := 0
		for author, f := range m {
			if f.flag.Withdraw {
				continue
			}
			l := b.g.Level(author).Level
			counting, alone := counts(l)
			out.Flags = append(out.Flags, viewFlag(target, author, l, counting, f))
			switch {
			case alone:
				out.Flagged = true
			case counting:
				weak++
			}
		}
		if weak >= flaggedBy {
			out.Flagged = true
		}
	}
	slices.SortFunc(out.Flags, func(x, y view.FlagBy) int {
		if c := strings.Compare(x.Target, y.Target); c != 0 {
			return c
		}
		return strings.Compare(x.Author, y.Author)
	})
	return out
}

// FlagsMade returns the standing flags a node made.
func (b *Book) FlagsMade(author string) []view.FlagBy {
	b.mu.RLock()
	defer b.mu.RUnlock()
	l := b.g.Level(author).Level
	counting, _ := counts(l)
	out := []view.FlagBy{}
	for _, target := range b.made[author] {
		if f := b.flags[target][author]; !f.flag.Withdraw {
			out = append(out, viewFlag(target, author, l, counting, f))
		}
	}
	slices.SortFunc(out, func(x, y view.FlagBy) int { return strings.Compare(x.Target, y.Target) })
	return out
}

func viewFlag(target, author string, l trust.Level, counting bool, f flagRec) view.FlagBy {
	return view.FlagBy{Target: target, Author: author, Level: string(l), Counts: counting,
		Reason: f.flag.Reason, Note: f.flag.Note, ID: f.id}
}

// ViewVerdict returns a trust verdict as the APIs show it.
func ViewVerdict(v trust.Verdict) view.Verdict {
	return view.Verdict{Level: string(v.Level), Hops: v.Hops, Introducers: v.Introducers}
}

// Levels returns the level of every node at a level other than unknown,
// by node ID: a search's trust facet and filter read it per query.
func (b *Book) Levels() map[string]string {
	out := make(map[string]string)
	b.g.Each(func(id string, l trust.Level) { out[id] = string(l) })
	return out
}

// FlaggedTargets returns the targets flagged now (by the rule of Flags).
func (b *Book) FlaggedTargets() []topics.FlagTarget {
	b.mu.RLock()
	targets := make(map[string]topics.FlagTarget, len(b.flags))
	for key, m := range b.flags {
		for _, f := range m {
			targets[key] = f.flag.Target
			break
		}
	}
	b.mu.RUnlock()
	var out []topics.FlagTarget
	for key, t := range targets {
		if b.Flags(key).Flagged {
			out = append(out, t)
		}
	}
	return out
}
