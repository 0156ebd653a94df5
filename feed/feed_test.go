package feed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

var testTime = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func testKey(t testing.TB, seed byte) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rawKey(t testing.TB, k crypto.PrivKey) []byte {
	t.Helper()
	raw, err := topics.RawPublicKey(k.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// openMem opens a log on an in-memory file system.
func openMem(t testing.TB, fs vfs.FS, cfg Config) *Log {
	t.Helper()
	cfg.fs = fs
	cfg.Now = func() time.Time { return testTime }
	l, err := Open("db", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// author builds valid announcement chains for one key.
type author struct {
	t   testing.TB
	key crypto.PrivKey
	raw []byte
}

func newAuthor(t testing.TB, seed byte) *author {
	k := testKey(t, seed)
	return &author{t: t, key: k, raw: rawKey(t, k)}
}

func (a *author) tracker(name string) topics.TrackerID { return topics.DeriveTrackerID(a.raw, name) }

// sign signs a thing announcement at seq after prev.
func (a *author) sign(tracker topics.TrackerID, seq uint64, prev topics.ID, thing *topics.Thing) *topics.Announcement {
	a.t.Helper()
	ann, err := topics.Sign(a.key, &topics.Payload{V: 1, Kind: topics.KindThing, Tracker: tracker, Seq: seq, Prev: prev,
		Time: topics.FormatTime(testTime), Thing: thing})
	if err != nil {
		a.t.Fatal(err)
	}
	return ann
}

// chain returns n linked thing announcements on tracker; variant changes
// their content, so two variants of one chain fork at every seq.
func (a *author) chain(tracker topics.TrackerID, n int, variant string) []*topics.Announcement {
	var out []*topics.Announcement
	var prev topics.ID
	for i := 1; i <= n; i++ {
		ann := a.sign(tracker, uint64(i), prev, &topics.Thing{ID: fmt.Sprintf("t%d", i), Title: "thing " + variant, Version: "1"})
		out = append(out, ann)
		prev = ann.ID
	}
	return out
}

func mustAppend(t testing.TB, l *Log, a *topics.Announcement, want Status) Result {
	t.Helper()
	r, err := l.Append(context.Background(), a)
	if err != nil {
		t.Fatalf("Append seq %d: %v", a.Payload.Seq, err)
	}
	if r.Status != want {
		t.Fatalf("Append seq %d: status %v, want %v", a.Payload.Seq, r.Status, want)
	}
	return r
}

func head(t testing.TB, l *Log, tracker topics.TrackerID) Head {
	t.Helper()
	hs, err := l.Heads()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Tracker == tracker {
			return h
		}
	}
	t.Fatalf("no head for %s", tracker)
	return Head{}
}

func TestAppendIsIdempotent(t *testing.T) {
	l := openMem(t, vfs.NewMem(), Config{})
	a := newAuthor(t, 1)
	c := a.chain(a.tracker("x"), 2, "a")
	r1 := mustAppend(t, l, c[0], Stored)
	r2 := mustAppend(t, l, c[0], Duplicate)
	if r1.Cursor != 1 || r2.Cursor != 1 {
		t.Errorf("cursors %d, %d; want 1, 1", r1.Cursor, r2.Cursor)
	}
	mustAppend(t, l, c[1], Stored)
	mustAppend(t, l, c[1], Duplicate)
	es, err := l.Entries(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].ID != c[0].ID || es[1].ID != c[1].ID {
		t.Fatalf("entries = %v", ids(es))
	}
	if s := l.Stats(); s.Entries != 2 || s.Duplicates != 2 {
		t.Errorf("stats = %+v", s)
	}
}

func ids(es []view.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%d:%s:%d", e.Cursor, e.ID.String()[:8], e.Seq))
	}
	return out
}

func TestGaps(t *testing.T) {
	l := openMem(t, vfs.NewMem(), Config{MaxGaps: 2})
	a := newAuthor(t, 1)
	tr := a.tracker("x")
	c := a.chain(tr, 8, "a")
	type step struct {
		seq        int
		status     Status
		contig     uint64
		max        uint64
		gaps       []Range
		contigHash topics.ID
	}
	for _, s := range []step{
		{1, Stored, 1, 1, nil, c[0].ID},
		{3, Stored, 1, 3, []Range{{2, 2}}, c[0].ID},
		{6, Stored, 1, 6, []Range{{2, 2}, {4, 5}}, c[0].ID},
		{8, GapLimited, 1, 6, []Range{{2, 2}, {4, 5}}, c[0].ID}, // a third range is over the cap
		{2, Stored, 3, 6, []Range{{4, 5}}, c[2].ID},
		{5, Stored, 3, 6, []Range{{4, 4}}, c[2].ID},
		{8, Stored, 3, 8, []Range{{4, 4}, {7, 7}}, c[2].ID},
		{4, Stored, 6, 8, []Range{{7, 7}}, c[5].ID},
		{7, Stored, 8, 8, nil, c[7].ID},
	} {
		mustAppend(t, l, c[s.seq-1], s.status)
		h := head(t, l, tr)
		if h.Seq != s.contig || h.Max != s.max || !slices.Equal(h.Gaps, s.gaps) || h.ID != s.contigHash {
			t.Fatalf("after seq %d: head %d max %d gaps %v; want %d %d %v", s.seq, h.Seq, h.Max, h.Gaps, s.contig, s.max, s.gaps)
		}
	}
	if s := l.Stats(); s.GapLimited != 1 || s.Entries != 8 {
		t.Errorf("stats = %+v", s)
	}
}

func TestForkFreezesChain(t *testing.T) {
	a := newAuthor(t, 1)
	tr := a.tracker("x")
	main := a.chain(tr, 3, "a")
	other := a.chain(tr, 3, "b") // same seqs, other content

	t.Run("same seq", func(t *testing.T) {
		l := openMem(t, vfs.NewMem(), Config{})
		mustAppend(t, l, main[0], Stored)
		mustAppend(t, l, main[1], Stored)
		alt := a.sign(tr, 2, main[0].ID, &topics.Thing{ID: "t2", Title: "other", Version: "1"})
		r := mustAppend(t, l, alt, Forked)
		mustAppend(t, l, main[2], Frozen)
		third := a.sign(tr, 2, main[0].ID, &topics.Thing{ID: "t2", Title: "third", Version: "1"})
		mustAppend(t, l, third, Frozen)
		h := head(t, l, tr)
		if h.Fork == nil || h.Fork.Seq != 2 || h.Fork.A != main[1].ID || h.Fork.B != alt.ID {
			t.Fatalf("fork = %+v", h.Fork)
		}
		// Both branches are kept and shown.
		es, _ := l.Entries(0, 10)
		if len(es) != 3 || es[2].ID != alt.ID || r.Cursor != 3 {
			t.Fatalf("entries = %v", ids(es))
		}
		ce, err := l.Chain(tr, a.raw, 2, 10)
		if err != nil || len(ce) != 2 || ce[0].Variant != 0 || ce[1].Variant != 1 || ce[1].ID != alt.ID {
			t.Fatalf("chain = %+v, %v", ce, err)
		}
		if _, err := l.Publish(context.Background(), a.key, []Draft{{Tracker: tr, Kind: topics.KindThing, Thing: &topics.Thing{ID: "n", Title: "n", Version: "1"}}}); !errors.Is(err, ErrFrozen) {
			t.Errorf("publish on a frozen chain: %v", err)
		}
		if s := l.Stats(); s.Forks != 1 || s.Frozen != 2 {
			t.Errorf("stats = %+v", s)
		}
	})
	t.Run("prev mismatch", func(t *testing.T) {
		l := openMem(t, vfs.NewMem(), Config{})
		mustAppend(t, l, main[0], Stored)
		mustAppend(t, l, other[1], Forked) // its prev is other[0], not main[0]
		h := head(t, l, tr)
		if h.Fork == nil || h.Fork.Seq != 1 || h.Fork.A != main[0].ID || h.Fork.B != other[1].ID {
			t.Fatalf("fork = %+v", h.Fork)
		}
	})
	t.Run("next links elsewhere", func(t *testing.T) {
		l := openMem(t, vfs.NewMem(), Config{})
		mustAppend(t, l, main[2], Stored)  // seq 1 and 2 missing
		mustAppend(t, l, other[1], Forked) // main[2] does not link to it
		if h := head(t, l, tr); h.Fork == nil || h.Fork.Seq != 2 {
			t.Fatalf("fork = %+v", h.Fork)
		}
	})
}

func TestOwnership(t *testing.T) {
	l := openMem(t, vfs.NewMem(), Config{})
	a, b := newAuthor(t, 1), newAuthor(t, 2)
	ann := a.chain(a.tracker("x"), 1, "a")[0]
	forged := *ann
	p := *ann.Payload
	p.Tracker = b.tracker("x")
	forged.Payload = &p
	if _, err := l.Append(context.Background(), &forged); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("append to another's tracker: %v", err)
	}
	if _, err := l.Publish(context.Background(), a.key, []Draft{{Tracker: b.tracker("x"), Kind: topics.KindThing, Thing: &topics.Thing{ID: "n", Title: "n", Version: "1"}}}); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("publish to another's tracker: %v", err)
	}
	if l.Last() != 0 {
		t.Fatal("something was stored")
	}
}

func publish(t testing.TB, l *Log, key crypto.PrivKey, ds ...Draft) []Published {
	t.Helper()
	ps, err := l.Publish(context.Background(), key, ds)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func thingDraft(tr topics.TrackerID, id, version, title string) Draft {
	return Draft{Tracker: tr, Kind: topics.KindThing, Thing: &topics.Thing{ID: id, Title: title, Version: version}}
}

func TestPublishVersionsEditsRetractions(t *testing.T) {
	l := openMem(t, vfs.NewMem(), Config{})
	a := newAuthor(t, 1)
	tr := a.tracker("designs")
	info := Draft{Tracker: tr, Kind: topics.KindTracker, TrackerInfo: &topics.TrackerInfo{Name: "designs", Title: "Designs"}}

	ps := publish(t, l, a.key, info, thingDraft(tr, "beest", "1", "Strandbeest"))
	if !ps[0].New || !ps[1].New || ps[0].Seq != 1 || ps[1].Seq != 2 {
		t.Fatalf("first publish = %+v", ps)
	}
	// Identical content: a no-op returning the existing ID.
	again := publish(t, l, a.key, info, thingDraft(tr, "beest", "1", "Strandbeest"))
	if again[0].New || again[1].New || again[0].ID != ps[0].ID || again[1].ID != ps[1].ID {
		t.Fatalf("re-publish = %+v, want the existing IDs", again)
	}
	edit := publish(t, l, a.key, thingDraft(tr, "beest", "1", "Strandbeest (typo fixed)"))[0]
	v2 := publish(t, l, a.key, thingDraft(tr, "beest", "2", "Strandbeest II"))[0]
	if !edit.New || edit.Seq != 3 || v2.Seq != 4 {
		t.Fatalf("edit %+v, v2 %+v", edit, v2)
	}
	s, err := l.Thing(tr, "beest")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Versions) != 2 || len(s.Versions[0].Announcements) != 2 || s.Versions[0].Latest().ID != edit.ID {
		t.Fatalf("state = %+v", s)
	}
	if s.Latest().Version != "2" {
		t.Fatalf("latest = %q, want 2", s.Latest().Version)
	}

	// Retract version 2: the latest is version 1 (its edit) again.
	r := publish(t, l, a.key, Draft{Tracker: tr, Kind: topics.KindRetract, Retracts: v2.ID})[0]
	s, _ = l.Thing(tr, "beest")
	if lv := s.Latest(); lv == nil || lv.Version != "1" || lv.Latest().ID != edit.ID {
		t.Fatalf("after retract latest = %+v", lv)
	}
	if rr := publish(t, l, a.key, Draft{Tracker: tr, Kind: topics.KindRetract, Retracts: v2.ID})[0]; rr.New || rr.ID != r.ID {
		t.Fatalf("second retract = %+v, want the first", rr)
	}
	// Retracting something that is not a Thing of ours fails and changes nothing.
	last := l.Last()
	if _, err := l.Publish(context.Background(), a.key, []Draft{{Tracker: tr, Kind: topics.KindRetract, Retracts: topics.IDOf([]byte("nothing"))}}); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("retract of nothing: %v", err)
	}
	// A failing draft fails the whole publish.
	if _, err := l.Publish(context.Background(), a.key, []Draft{thingDraft(tr, "new", "1", "New"), {Tracker: tr, Kind: topics.KindRetract, Retracts: topics.IDOf([]byte("nothing"))}}); err == nil {
		t.Fatal("publish with a bad draft succeeded")
	}
	if l.Last() != last {
		t.Fatalf("failed publishes changed the log: %d → %d", last, l.Last())
	}
	tst, err := l.Tracker(tr)
	if err != nil || tst.Name != "designs" || tst.Info.ID != ps[0].ID {
		t.Fatalf("tracker = %+v, %v", tst, err)
	}
}

// TestRetractBeforeTarget: a retraction that arrives before the Thing it
// retracts takes effect when the Thing arrives.
func TestRetractBeforeTarget(t *testing.T) {
	a := newAuthor(t, 1)
	tr := a.tracker("x")
	src := openMem(t, vfs.NewMem(), Config{})
	th := publish(t, src, a.key, thingDraft(tr, "t", "1", "T"))[0]
	publish(t, src, a.key, Draft{Tracker: tr, Kind: topics.KindRetract, Retracts: th.ID})

	dst := openMem(t, vfs.NewMem(), Config{})
	for _, cur := range []uint64{2, 1} {
		ann, err := src.Announcement(cur)
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, dst, ann, Stored)
	}
	s, err := dst.Thing(tr, "t")
	if err != nil {
		t.Fatal(err)
	}
	if s.Latest() != nil || s.Versions[0].Retracted == nil {
		t.Fatalf("state = %+v, want version 1 retracted", s)
	}
}

func TestReaderFollowsAppends(t *testing.T) {
	l := openMem(t, vfs.NewMem(), Config{})
	a := newAuthor(t, 1)
	c := a.chain(a.tracker("x"), 600, "a")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		for _, ann := range c {
			if _, err := l.Append(ctx, ann); err != nil {
				return
			}
		}
	}()
	r := l.NewReader(0)
	for i, want := range c {
		e, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if e.ID != want.ID || e.Cursor != uint64(i+1) || e.Seq != want.Payload.Seq || e.Kind != "thing" {
			t.Fatalf("entry %d = %+v", i, e)
		}
		if _, err := topics.Validate(e.Topic, e.Envelope, time.Time{}); err != nil {
			t.Fatalf("entry %d does not verify: %v", i, err)
		}
	}
	// Paging after a cursor.
	page, err := l.Entries(595, 10)
	if err != nil || len(page) != 5 || page[0].Cursor != 596 {
		t.Fatalf("page = %v, %v", ids(page), err)
	}
	// A waiting reader is released by Close.
	released := make(chan error, 1)
	go func() { _, err := r.Next(ctx); released <- err }()
	wait.For(t, 5*time.Second, func() error {
		if !waiting() {
			return errors.New("the reader is not waiting in Log.Wait yet")
		}
		return nil
	})
	l.Close()
	if err := <-released; !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after close: %v", err)
	}
}

// waiting reports whether a goroutine is blocked in Log.Wait.
func waiting() bool {
	buf := make([]byte, 1<<20)
	return bytes.Contains(buf[:runtime.Stack(buf, true)], []byte("feed.(*Log).Wait("))
}

func TestReopen(t *testing.T) {
	fs := vfs.NewMem()
	a := newAuthor(t, 1)
	tr := a.tracker("x")
	l := openMem(t, fs, Config{})
	first := publish(t, l, a.key, thingDraft(tr, "t", "1", "T"), thingDraft(tr, "u", "1", "U"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Publish(context.Background(), a.key, []Draft{thingDraft(tr, "v", "1", "V")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
	if _, err := l.Entries(0, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}

	l = openMem(t, fs, Config{})
	if l.Last() != 2 {
		t.Fatalf("last cursor after reopen = %d", l.Last())
	}
	// The seq allocator continues the chain; identical content is still a no-op.
	ps := publish(t, l, a.key, thingDraft(tr, "t", "1", "T"), thingDraft(tr, "v", "1", "V"))
	if ps[0].New || ps[0].ID != first[0].ID || !ps[1].New || ps[1].Seq != 3 || ps[1].Cursor != 3 {
		t.Fatalf("after reopen = %+v", ps)
	}
	ce, err := l.Chain(tr, a.raw, 1, 10)
	if err != nil || len(ce) != 3 {
		t.Fatalf("chain = %v, %v", ce, err)
	}
	ann, err := l.Announcement(3)
	if err != nil || ann.Payload.Prev != first[1].ID {
		t.Fatalf("seq 3 prev = %v, want %v (%v)", ann.Payload.Prev, first[1].ID, err)
	}
	if h := head(t, l, tr); h.Seq != 3 || h.ID != ps[1].ID {
		t.Fatalf("head = %+v", h)
	}
}

// TestThingsAfter pages through the Things of every tracker, of one tracker,
// and of one author's trackers, each Thing once.
func TestThingsAfter(t *testing.T) {
	l := openMem(t, vfs.NewMem(), Config{})
	a, b := newAuthor(t, 1), newAuthor(t, 2)
	want := map[ThingKey]bool{}
	for _, au := range []*author{a, b} {
		for _, name := range []string{"one", "two"} {
			tr := au.tracker(name)
			var ds []Draft
			for i := range 7 {
				id := fmt.Sprintf("%s-%d", name, i)
				ds = append(ds, thingDraft(tr, id, "1", "v1"), thingDraft(tr, id, "2", "v2"))
				want[ThingKey{tr, id}] = true
			}
			publish(t, l, au.key, ds...)
		}
	}
	pages := func(prefix []byte, limit int) []ThingKey {
		var got []ThingKey
		var after *ThingKey
		for range 100 {
			page, err := l.ThingsAfter(prefix, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				return got
			}
			for _, s := range page {
				if len(s.Versions) != 2 {
					t.Fatalf("%s/%s: %d versions, want 2", s.Tracker, s.Thing, len(s.Versions))
				}
				got = append(got, ThingKey{s.Tracker, s.Thing})
			}
			after = &got[len(got)-1]
		}
		t.Fatal("paging never ended")
		return nil
	}
	all := pages(nil, 3)
	if len(all) != len(want) {
		t.Fatalf("got %d Things, want %d", len(all), len(want))
	}
	seen := map[ThingKey]bool{}
	for _, k := range all {
		if !want[k] || seen[k] {
			t.Fatalf("Thing %v unexpected or repeated", k)
		}
		seen[k] = true
	}
	one := a.tracker("two")
	if got := pages(one[:], 4); len(got) != 7 || got[0].Tracker != one {
		t.Fatalf("one tracker: %v", got)
	}
	if got := pages(one[:10], 5); len(got) != 14 {
		t.Fatalf("one author's trackers: %d Things, want 14", len(got))
	}
}

// TestTrackersAfter pages through the trackers in ID order.
func TestTrackersAfter(t *testing.T) {
	l := openMem(t, vfs.NewMem(), Config{})
	a := newAuthor(t, 1)
	for i := range 7 {
		name := fmt.Sprintf("t%d", i)
		publish(t, l, a.key, Draft{Tracker: a.tracker(name), Kind: topics.KindTracker, TrackerInfo: &topics.TrackerInfo{Name: name}})
	}
	all, err := l.Trackers()
	if err != nil || len(all) != 7 {
		t.Fatalf("Trackers: %d, %v", len(all), err)
	}
	var got []TrackerState
	var after *topics.TrackerID
	for range 10 {
		page, err := l.TrackersAfter(nil, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = &page[len(page)-1].ID
	}
	if len(got) != 7 {
		t.Fatalf("paged %d trackers, want 7", len(got))
	}
	for i := range got {
		if got[i].ID != all[i].ID {
			t.Fatalf("tracker %d: %s, want %s", i, got[i].ID, all[i].ID)
		}
	}
}

// TestNotFound: a lookup of what is not stored fails with ErrNotFound,
// which is also the query APIs' view.ErrNotFound, and says so once.
func TestNotFound(t *testing.T) {
	l := openMem(t, vfs.NewMem(), Config{})
	_, err := l.Thing(newAuthor(t, 1).tracker("t"), "nothing")
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, view.ErrNotFound) {
		t.Fatalf("Thing of an unknown tracker: %v, want ErrNotFound and view.ErrNotFound", err)
	}
	if !strings.HasPrefix(err.Error(), "feed: not found") {
		t.Errorf("message %q, want it to start %q", err, "feed: not found")
	}
	if errors.Is(errors.New("feed: not found"), ErrNotFound) {
		t.Error("another error with the same message is ErrNotFound")
	}
}
