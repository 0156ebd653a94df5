package datadir

import (
	"context"
	"testing"
	"time"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/trust"
)

// bookWorld is a dir (self) and other nodes' dirs whose records it takes
// in, as a node stores what the network brings.
type bookWorld struct {
	t     *testing.T
	self  *Dir
	book  *Book
	nodes map[string]*Dir // by name
}

func newBookWorld(t *testing.T, names ...string) *bookWorld {
	w := &bookWorld{t: t, self: openDir(t), nodes: make(map[string]*Dir)}
	w.nodes["A"] = w.self
	for _, n := range names {
		w.nodes[n] = openDir(t)
	}
	b, err := w.self.OpenBook(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	w.book = b
	return w
}

func (w *bookWorld) id(name string) string { return w.nodes[name].ID.ID }

// trust has author say level of subject, and self store and apply it.
func (w *bookWorld) trust(author, level, subject string) {
	w.t.Helper()
	d := w.nodes[author]
	fp := ""
	if level == string(topics.TrustVerified) {
		fp = w.nodes[subject].ID.Fingerprint
	}
	p, err := d.Trust(context.Background(), w.id(subject), topics.TrustLevel(level), fp, "")
	if err != nil {
		w.t.Fatal(err)
	}
	w.take(d, p.Cursor)
}

// flag has author flag target, and self store and apply it.
func (w *bookWorld) flag(author string, target topics.FlagTarget, withdraw bool) {
	w.t.Helper()
	d := w.nodes[author]
	f := topics.Flag{Target: target, Reason: topics.FlagMalware, Withdraw: withdraw}
	if withdraw {
		f.Reason = ""
	}
	p, err := d.Flag(context.Background(), f)
	if err != nil {
		w.t.Fatal(err)
	}
	w.take(d, p.Cursor)
}

// take stores the announcement at cursor of d in self (unless d is self)
// and applies it to the book.
func (w *bookWorld) take(d *Dir, cursor uint64) {
	w.t.Helper()
	a, err := d.Log.Announcement(cursor)
	if err != nil {
		w.t.Fatal(err)
	}
	if d != w.self {
		if r, err := w.self.Ingest(context.Background(), [][]byte{a.Env.Raw}); err != nil || r.Stored != 1 {
			w.t.Fatalf("ingest: %+v %v", r, err)
		}
	}
	w.book.Apply(a)
}

func (w *bookWorld) level(name string) trust.Level { return w.book.Level(w.id(name)).Level }

func TestBookLevelsAndFlags(t *testing.T) {
	w := newBookWorld(t, "B", "C", "D", "M1", "M2", "M3")
	w.trust("A", "verified", "B")
	w.trust("B", "trusted", "C")
	w.trust("C", "marginal", "D")
	for name, want := range map[string]trust.Level{"A": trust.Self, "B": trust.Verified, "C": trust.Web, "D": trust.Unknown} {
		if got := w.level(name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	if got := w.book.Level(w.id("C")).Introducers; len(got) != 1 || got[0] != w.id("B") {
		t.Errorf("C's introducers %v, want [B]", got)
	}
	var dKey [32]byte
	copy(dKey[:], w.nodes["D"].ID.RawKey)
	if got := w.book.KeyLevel(dKey); got != trust.Unknown {
		t.Errorf("KeyLevel(D) = %s", got)
	}
	var bKey [32]byte
	copy(bKey[:], w.nodes["B"].ID.RawKey)
	if got := w.book.KeyLevel(bKey); got != trust.Verified {
		t.Errorf("KeyLevel(B) = %s", got)
	}

	thing := topics.FlagTarget{Tracker: topics.DeriveTrackerID(w.nodes["D"].ID.RawKey, "things"), Thing: "widget"}
	key := thing.Key()
	w.flag("C", thing, false) // web: counts, one of three
	if f := w.book.Flags(key); f.Flagged || len(f.Flags) != 1 || !f.Flags[0].Counts || f.Flags[0].Level != "web" {
		t.Errorf("after C's flag: %+v, want one counting web flag, not flagged", f)
	}
	w.flag("D", thing, false) // unknown: shown, does not count
	if f := w.book.Flags(key); f.Flagged || len(f.Flags) != 2 {
		t.Errorf("after D's flag: %+v, want two flags, not flagged", f)
	}
	w.flag("B", thing, false) // verified: flags alone
	if f := w.book.Flags(key); !f.Flagged {
		t.Errorf("after B's flag: %+v, want flagged", f)
	}
	w.flag("B", thing, true)
	if f := w.book.Flags(key); f.Flagged || len(f.Flags) != 2 {
		t.Errorf("after B withdrew: %+v, want two flags, not flagged", f)
	}
	if made := w.book.FlagsMade(w.id("B")); len(made) != 0 {
		t.Errorf("B's flags after withdrawing: %+v", made)
	}

	// Three marginal nodes' flags flag; two do not.
	other := topics.FlagTarget{Node: w.id("D")}
	for i, m := range []string{"M1", "M2", "M3"} {
		w.trust("A", "marginal", m)
		w.flag(m, other, false)
		if got, want := w.book.Flags(other.Key()).Flagged, i == 2; got != want {
			t.Errorf("after %d marginal flags: flagged %v, want %v", i+1, got, want)
		}
	}

	// Reopened, the book says the same: records come from the log's index.
	b2, err := w.self.OpenBook(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"A", "B", "C", "D", "M1"} {
		if got, want := b2.Level(w.id(n)), w.book.Level(w.id(n)); got.Level != want.Level || got.Hops != want.Hops {
			t.Errorf("reopened: %s is %+v, was %+v", n, got, want)
		}
	}
	if got, want := b2.Flags(key, other.Key()), w.book.Flags(key, other.Key()); got.Flagged != want.Flagged || len(got.Flags) != len(want.Flags) {
		t.Errorf("reopened flags %+v, were %+v", got, want)
	}
}

func TestBookBlock(t *testing.T) {
	w := newBookWorld(t, "B", "C")
	w.trust("A", "trusted", "B")
	w.trust("B", "trusted", "C")
	changed, err := w.book.Block(w.id("B"), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 2 || w.level("B") != trust.Blocked || w.level("C") != trust.Unknown {
		t.Errorf("blocking B changed %v; B %s, C %s; want B blocked, C unknown", changed, w.level("B"), w.level("C"))
	}
	if _, err := w.book.Block("not a node", true); err == nil {
		t.Error("blocking a malformed ID: no error")
	}
	b2, err := w.self.OpenBook(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := b2.Level(w.id("B")).Level; got != trust.Blocked {
		t.Errorf("reopened: B is %s, want blocked (the list is kept in the dir)", got)
	}
	if _, err := b2.Block(w.id("B"), false); err != nil {
		t.Fatal(err)
	}
	if got := b2.Level(w.id("C")).Level; got != trust.Web {
		t.Errorf("unblocked B: C is %s, want web", got)
	}
	if got := b2.Blocked(); len(got) != 0 {
		t.Errorf("block list %v after unblocking", got)
	}
}

func TestDiscoveries(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDiscoveries(dir)
	if err != nil {
		t.Fatal(err)
	}
	owner, raw := otherNode(t, 7)
	t1, t2 := topics.DeriveTrackerID(raw, "one"), topics.DeriveTrackerID(raw, "two")
	other, raw2 := otherNode(t, 8)
	t3 := topics.DeriveTrackerID(raw2, "three")
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	d.Seen(topics.Discovery{Tracker: t1, Owner: owner, Title: "One"}, at)
	d.Seen(topics.Discovery{Tracker: t2, Owner: owner, Title: "Two"}, at.Add(time.Minute))
	d.Seen(topics.Discovery{Tracker: t3, Owner: other, Title: "Three"}, at.Add(2*time.Minute))
	d.Seen(topics.Discovery{Tracker: t1, Owner: owner, Title: "One again"}, at.Add(3*time.Minute))
	got := d.List(func(t topics.TrackerID) bool { return t == t2 }) // t2 followed
	if len(got) != 2 || got[0].Tracker != t1 || got[0].Title != "One again" || !got[0].First.Equal(at) || got[1].Tracker != t3 {
		t.Fatalf("list %+v: want One again (first seen %v), then Three", got, at)
	}
	d.Dismiss([]string{other}, at)
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	d2, err := OpenDiscoveries(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := d2.List(nil); len(got) != 2 || got[0].Tracker != t1 || got[1].Tracker != t2 {
		t.Errorf("reopened, the owner of Three dismissed: %+v, want One, Two", got)
	}
	if err := CheckDismiss([]string{"nonsense"}); err == nil {
		t.Error("CheckDismiss(nonsense): no error")
	}
}

func TestDiscoveriesBounded(t *testing.T) {
	d, err := OpenDiscoveries(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := otherNode(t, 9)
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var first topics.TrackerID
	for i := range MaxDiscoveries + 10 {
		var tr topics.TrackerID
		tr[0], tr[1], tr[2] = byte(i>>16), byte(i>>8), byte(i)
		if i == 0 {
			first = tr
		}
		d.Seen(topics.Discovery{Tracker: tr, Owner: owner}, at.Add(time.Duration(i)*time.Second))
	}
	if n := d.Len(); n > MaxDiscoveries {
		t.Errorf("%d trackers held, more than %d", n, MaxDiscoveries)
	}
	for _, s := range d.List(nil) {
		if s.Tracker == first {
			t.Error("the tracker seen longest ago is still held")
		}
	}
}
