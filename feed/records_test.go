package feed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/thingtracker/ttn/topics"
)

func (a *author) nodeID() string {
	a.t.Helper()
	id, err := topics.NodeID(a.key.GetPublic())
	if err != nil {
		a.t.Fatal(err)
	}
	return id
}

func (a *author) nodeTracker() topics.TrackerID { return a.tracker("") }

// record signs a trust record or a flag (whichever body is set) on a's node
// tracker at seq after prev.
func (a *author) record(seq uint64, prev topics.ID, tr *topics.Trust, f *topics.Flag) *topics.Announcement {
	a.t.Helper()
	kind := topics.KindTrust
	if f != nil {
		kind = topics.KindFlag
	}
	ann, err := topics.Sign(a.key, &topics.Payload{V: 1, Kind: kind, Tracker: a.nodeTracker(), Seq: seq, Prev: prev,
		Time: topics.FormatTime(testTime), Trust: tr, Flag: f})
	if err != nil {
		a.t.Fatal(err)
	}
	return ann
}

func trustDraft(a *author, subject string, level topics.TrustLevel) Draft {
	return Draft{Tracker: a.nodeTracker(), Kind: topics.KindTrust, Trust: &topics.Trust{Subject: subject, Level: level}}
}

func flagDraft(a *author, f topics.Flag) Draft {
	return Draft{Tracker: a.nodeTracker(), Kind: topics.KindFlag, Flag: &f}
}

// standing returns every standing record as "author-seed kind key seq".
func standing(t *testing.T, l *Log, names map[string]string) []string {
	t.Helper()
	var got []string
	err := l.Records(context.Background(), func(a *topics.Announcement) error {
		k, _ := a.Payload.RecordKey()
		got = append(got, fmt.Sprintf("%s %s %d", names[a.Payload.Author], k, a.Payload.Seq))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestPublishRecords: trust records and flags are published on the author's
// node tracker only, checked first; the latest per subject or target
// stands; publishing what stands already is a no-op.
func TestPublishRecords(t *testing.T) {
	l := openMem(t, vfs.NewMem(), Config{})
	a, b := newAuthor(t, 1), newAuthor(t, 2)
	bid := b.nodeID()
	trusted := publish(t, l, a.key, trustDraft(a, bid, topics.TrustTrusted))[0]
	if !trusted.New || trusted.Seq != 1 {
		t.Fatalf("first trust = %+v", trusted)
	}
	// The same body again: nothing new, the standing record's ID.
	if again := publish(t, l, a.key, trustDraft(a, bid, topics.TrustTrusted))[0]; again.New || again.ID != trusted.ID || again.Cursor != trusted.Cursor {
		t.Fatalf("identical trust = %+v, want %+v with New false", again, trusted)
	}
	// Another level replaces it; going back to the first level is new again.
	marginal := publish(t, l, a.key, trustDraft(a, bid, topics.TrustMarginal))[0]
	back := publish(t, l, a.key, trustDraft(a, bid, topics.TrustTrusted))[0]
	if !marginal.New || !back.New || back.ID == trusted.ID {
		t.Fatalf("marginal %+v, back to trusted %+v", marginal, back)
	}
	rec, err := l.Record(a.raw, "trust:"+bid)
	if err != nil || rec.ID != back.ID {
		t.Fatalf("Record(trust) = %v, %v; want %s", rec, err, back.ID)
	}

	target := topics.FlagTarget{Tracker: b.tracker("x"), Thing: "t1"}
	flag := publish(t, l, a.key, flagDraft(a, topics.Flag{Target: target, Reason: topics.FlagMalware}))[0]
	withdrawn := publish(t, l, a.key, flagDraft(a, topics.Flag{Target: target, Withdraw: true}))[0]
	if again := publish(t, l, a.key, flagDraft(a, topics.Flag{Target: target, Withdraw: true}))[0]; !withdrawn.New || again.New || again.ID != withdrawn.ID {
		t.Fatalf("withdraw %+v, again %+v", withdrawn, again)
	}
	rec, err = l.Record(a.raw, "flag:"+target.Key())
	if err != nil || rec.ID != withdrawn.ID || !rec.Payload.Flag.Withdraw {
		t.Fatalf("Record(flag) = %v, %v; want the withdrawal", rec, err)
	}
	if rec.ID == flag.ID {
		t.Fatal("the withdrawn flag still stands")
	}
	// Two drafts of one publish: the second sees the first.
	ps := publish(t, l, a.key, trustDraft(a, bid, topics.TrustNone), trustDraft(a, bid, topics.TrustNone))
	if !ps[0].New || ps[1].New || ps[1].ID != ps[0].ID {
		t.Fatalf("two identical drafts = %+v", ps)
	}
	if _, err := l.Record(b.raw, "trust:"+a.nodeID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Record of nothing: %v", err)
	}

	// Refused before anything is stored.
	last := l.Last()
	for _, tc := range []struct {
		name string
		d    Draft
		want error  // errors.Is, when set
		why  string // in the message
	}{
		{"trust on another tracker", Draft{Tracker: a.tracker("x"), Kind: topics.KindTrust, Trust: &topics.Trust{Subject: bid, Level: topics.TrustTrusted}}, ErrWrongTracker, "node tracker"},
		{"flag on another tracker", Draft{Tracker: a.tracker("x"), Kind: topics.KindFlag, Flag: &topics.Flag{Target: target, Reason: topics.FlagSpam}}, ErrWrongTracker, "node tracker"},
		{"thing on the node tracker", thingDraft(a.nodeTracker(), "t", "1", "T"), ErrWrongTracker, "node tracker"},
		{"self", trustDraft(a, a.nodeID(), topics.TrustTrusted), nil, "author itself"},
		{"verified without fingerprint", trustDraft(a, bid, topics.TrustVerified), nil, "fingerprint"},
		{"flag without reason", flagDraft(a, topics.Flag{Target: target}), nil, "reason"},
		{"no body", Draft{Tracker: a.nodeTracker(), Kind: topics.KindTrust}, errBadDraftT, ""},
		{"two bodies", Draft{Tracker: a.nodeTracker(), Kind: topics.KindTrust, Trust: &topics.Trust{Subject: bid, Level: topics.TrustTrusted},
			Flag: &topics.Flag{Target: target, Reason: topics.FlagSpam}}, errBadDraftT, ""},
	} {
		// CheckDrafts: refused before the writer, whatever the log holds.
		if err := CheckDrafts(a.raw, []Draft{tc.d}); err == nil || tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("CheckDrafts, %s: %v", tc.name, err)
		}
		if _, err := l.Publish(context.Background(), a.key, []Draft{tc.d}); err == nil {
			t.Errorf("Publish, %s: no error", tc.name)
		}
	}
	if l.Last() != last {
		t.Fatalf("refused drafts changed the log: %d → %d", last, l.Last())
	}

	got := standing(t, l, map[string]string{a.nodeID(): "a"})
	want := []string{"a flag:" + target.Key() + " 5", "a trust:" + bid + " 6"}
	if !slices.Equal(got, want) {
		t.Fatalf("standing records = %q, want %q", got, want)
	}
}

// TestRecordsLatestStands: records stored out of seq order (as sync may
// bring them) leave the highest seq standing, per author and record key;
// Records lists them in key order and stops on fn's error.
func TestRecordsLatestStands(t *testing.T) {
	l := openMem(t, vfs.NewMem(), Config{})
	a, b, c := newAuthor(t, 1), newAuthor(t, 2), newAuthor(t, 3)
	cid := c.nodeID()
	trust := func(level topics.TrustLevel) *topics.Trust { return &topics.Trust{Subject: cid, Level: level} }
	a1 := a.record(1, topics.ID{}, trust(topics.TrustTrusted), nil)
	a2 := a.record(2, a1.ID, trust(topics.TrustDistrusted), nil)
	a3 := a.record(3, a2.ID, nil, &topics.Flag{Target: topics.FlagTarget{Node: cid}, Reason: topics.FlagSpam})
	a4 := a.record(4, a3.ID, trust(topics.TrustMarginal), nil)
	b1 := b.record(1, topics.ID{}, &topics.Trust{Subject: cid, Level: topics.TrustVerified, Fingerprint: topics.FingerprintOf(c.raw)}, nil)
	for _, ann := range []*topics.Announcement{a4, a2, b1, a1, a3} {
		mustAppend(t, l, ann, Stored)
	}
	got := standing(t, l, map[string]string{a.nodeID(): "a", b.nodeID(): "b"})
	want := []string{"a flag:node:" + cid + " 3", "a trust:" + cid + " 4", "b trust:" + cid + " 1"}
	if sorted := slices.Sorted(slices.Values(got)); !slices.Equal(sorted, want) {
		t.Fatalf("standing records = %q, want %q", got, want)
	}
	// Key order: by author key, then record key.
	keys := make([][]byte, 0, len(got))
	l.Records(context.Background(), func(r *topics.Announcement) error {
		rk, _ := r.Payload.RecordKey()
		keys = append(keys, recordIndexKey(r.Env.RawKey, rk))
		return nil
	})
	if !slices.IsSortedFunc(keys, func(x, y []byte) int { return strings.Compare(string(x), string(y)) }) {
		t.Errorf("Records out of key order")
	}
	stop := errors.New("stop")
	n := 0
	if err := l.Records(context.Background(), func(*topics.Announcement) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("Records with a failing fn: %v after %d calls", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Records(ctx, func(*topics.Announcement) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Records with a cancelled ctx: %v", err)
	}
}

// TestRecordsFork: two records of one seq (a fork) leave the more cautious
// trust record standing, whichever arrives first, and the first flag.
func TestRecordsFork(t *testing.T) {
	a, c := newAuthor(t, 1), newAuthor(t, 3)
	cid := c.nodeID()
	target := topics.FlagTarget{Node: cid}
	first := a.record(1, topics.ID{}, &topics.Trust{Subject: cid, Level: topics.TrustMarginal}, nil)
	trusted := a.record(2, first.ID, &topics.Trust{Subject: cid, Level: topics.TrustTrusted}, nil)
	distrusted := a.record(2, first.ID, &topics.Trust{Subject: cid, Level: topics.TrustDistrusted}, nil)
	spam := a.record(2, first.ID, nil, &topics.Flag{Target: target, Reason: topics.FlagSpam})
	malware := a.record(2, first.ID, nil, &topics.Flag{Target: target, Reason: topics.FlagMalware})
	for _, tc := range []struct {
		name       string
		one, other *topics.Announcement
		key        string
		want       *topics.Announcement
	}{
		{"trust, cautious first", distrusted, trusted, "trust:" + cid, distrusted},
		{"trust, cautious second", trusted, distrusted, "trust:" + cid, distrusted},
		{"flag", malware, spam, "flag:" + target.Key(), malware},
		{"flag, the other first", spam, malware, "flag:" + target.Key(), spam},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openMem(t, vfs.NewMem(), Config{})
			mustAppend(t, l, first, Stored)
			mustAppend(t, l, tc.one, Stored)
			mustAppend(t, l, tc.other, Forked)
			got, err := l.Record(a.raw, tc.key)
			if err != nil || got.ID != tc.want.ID {
				t.Fatalf("standing = %v, %v; want %s", got, err, tc.want.ID)
			}
		})
	}
}

// TestRecordIndexRebuilt: a log without the record index (written by a
// version before it) is indexed on open, and so is a log written past the
// index by such a version after this one.
func TestRecordIndexRebuilt(t *testing.T) {
	fs := vfs.NewMem()
	a, b := newAuthor(t, 1), newAuthor(t, 2)
	bid := b.nodeID()
	l := openMem(t, fs, Config{})
	publish(t, l, a.key, trustDraft(a, bid, topics.TrustTrusted))
	publish(t, l, b.key, flagDraft(b, topics.Flag{Target: topics.FlagTarget{Node: a.nodeID()}, Reason: topics.FlagSpam}))
	publish(t, l, a.key, trustDraft(a, bid, topics.TrustMarginal))
	names := map[string]string{a.nodeID(): "a", b.nodeID(): "b"}
	want := standing(t, l, names)
	if len(want) != 2 {
		t.Fatalf("standing records = %q", want)
	}
	reopen := func(damage func(db *pebble.DB) error) {
		t.Helper()
		if err := damage(l.db); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = openMem(t, fs, Config{})
		if got := standing(t, l, names); !slices.Equal(got, want) {
			t.Fatalf("standing records after reopen = %q, want %q", got, want)
		}
	}
	// A version before the index: neither the index nor the marker.
	reopen(func(db *pebble.DB) error {
		return errors.Join(db.DeleteRange([]byte{prefixRecord}, []byte{prefixRecord + 1}, pebble.Sync),
			db.Delete(keyRecordsIndexed, pebble.Sync))
	})
	// Such a version wrote the last entry (a's marginal record, cursor 3)
	// after this one had indexed the first two.
	reopen(func(db *pebble.DB) error {
		return errors.Join(db.Set(recordIndexKey(a.raw, "trust:"+bid), recordRef{seq: 1, cursor: 1}.encode(), pebble.Sync),
			db.Set(keyRecordsIndexed, []byte{0, 0, 0, 0, 0, 0, 0, 2}, pebble.Sync))
	})
}

// TestRecordsPages: Records reads the index in pages and gives every
// standing record once, in key order, across them.
func TestRecordsPages(t *testing.T) {
	l := openMem(t, vfs.NewMem(), Config{})
	a, b := newAuthor(t, 1), newAuthor(t, 2)
	const n = 600 // more than two pages
	ds := make([]Draft, n)
	for i := range ds {
		ds[i] = flagDraft(a, topics.Flag{Target: topics.FlagTarget{Tracker: b.tracker("x"), Thing: fmt.Sprintf("t%03d", i)}, Reason: topics.FlagBroken})
	}
	publish(t, l, a.key, ds...)
	var got []string
	err := l.Records(context.Background(), func(r *topics.Announcement) error {
		got = append(got, r.Payload.Flag.Target.Thing)
		return nil
	})
	if err != nil || len(got) != n || !slices.IsSorted(got) || len(slices.Compact(got)) != n {
		t.Fatalf("Records gave %d records (sorted %v), want %d: %v", len(got), slices.IsSorted(got), n, err)
	}
}
