package feed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/topics"
)

func size(c []*topics.Announcement) int64 {
	var n int64
	for _, a := range c {
		n += int64(len(a.Env.Raw))
	}
	return n
}

// TestQuotas: an author, and a tracker, stop at their quotas; duplicates
// cost nothing; other authors and trackers go on; the counts survive a
// reopen; a publish over quota is refused with the reason and changes
// nothing.
func TestQuotas(t *testing.T) {
	fs := vfs.NewMem()
	a, b, c := newAuthor(t, 1), newAuthor(t, 2), newAuthor(t, 3)
	chainA := a.chain(a.tracker("x"), 5, "a")
	chainC := c.chain(c.tracker("y"), 3, "c")
	// Three envelopes for an author, two for a tracker (a first envelope,
	// with no prev, is a little smaller than the others).
	cfg := Config{AuthorQuota: size(chainA[:3]), TrackerQuota: size(chainC[:2])}
	l := openMem(t, fs, cfg)

	// a's tracker x: the tracker quota bites first.
	mustAppend(t, l, chainA[0], Stored)
	mustAppend(t, l, chainA[0], Duplicate)
	mustAppend(t, l, chainA[1], Stored)
	mustAppend(t, l, chainA[2], OverQuota)
	// b is another author, on its own tracker.
	for _, ann := range b.chain(b.tracker("z"), 2, "b") {
		mustAppend(t, l, ann, Stored)
	}
	// c: two fit its tracker y; a third does not; its other tracker does.
	mustAppend(t, l, chainC[0], Stored)
	mustAppend(t, l, chainC[1], Stored)
	mustAppend(t, l, chainC[2], OverQuota)
	mustAppend(t, l, c.chain(c.tracker("w"), 1, "w")[0], Stored)
	// c's author quota now bites on a new tracker.
	other := c.chain(c.tracker("v"), 2, "v")
	mustAppend(t, l, other[0], OverQuota)
	if s := l.Stats(); s.OverQuota != 3 || s.Entries != 7 {
		t.Fatalf("stats %+v, want 3 over quota and 7 entries", s)
	}
	for _, q := range []struct {
		tracker topics.TrackerID
		author  []byte
		want    bool
	}{
		{a.tracker("x"), a.raw, true},      // tracker x is full
		{c.tracker("w"), c.raw, true},      // author c is full
		{b.tracker("z"), b.raw, true},      // z holds its quota exactly
		{b.tracker("z2"), b.raw, false},    // neither
		{a.tracker("x"), b.raw, true},      // x is full, whoever writes
		{a.tracker("other"), a.raw, false}, // a itself is under its quota
	} {
		if got := l.OverQuota(q.tracker, q.author); got != q.want {
			t.Errorf("OverQuota(%s, …) = %v, want %v", q.tracker, got, q.want)
		}
	}

	// The node's own publishes are not bound: quotas are for what others
	// make it store.
	if ps := publish(t, l, c.key, thingDraft(c.tracker("w"), "new", "1", "New")); !ps[0].New {
		t.Fatalf("own publish over quota: %+v", ps)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openMem(t, fs, cfg)
	mustAppend(t, l, chainA[2], OverQuota)
	mustAppend(t, l, chainC[2], OverQuota)
	mustAppend(t, l, b.chain(b.tracker("z"), 3, "b")[2], OverQuota)
	mustAppend(t, l, b.chain(b.tracker("z2"), 1, "b")[0], Stored)

	// Nor is fork evidence: a chain at its quota still freezes on a fork.
	mustAppend(t, l, c.chain(c.tracker("y"), 2, "other")[1], Forked)
	mustAppend(t, l, chainC[2], Frozen)
}

// TestAuthorQuotaOf: each author has the quota the function gives it (zero:
// AuthorQuota; negative: none); a raised quota lets a refused author in
// again, OverQuota included, and a lowered one keeps it out; at Open the
// function decides who is full.
func TestAuthorQuotaOf(t *testing.T) {
	fs := vfs.NewMem()
	a, b, c := newAuthor(t, 1), newAuthor(t, 2), newAuthor(t, 3)
	chainA := a.chain(a.tracker("x"), 5, "a")
	chainB := b.chain(b.tracker("x"), 2, "b")
	chainC := c.chain(c.tracker("x"), 3, "c")
	var quotaA atomic.Int64 // the writer and OverQuota read it
	quotaA.Store(size(chainA[:2]))
	cfg := Config{AuthorQuota: size(chainB[:1]), TrackerQuota: -1, AuthorQuotaOf: func(author [32]byte) int64 {
		switch {
		case bytes.Equal(author[:], a.raw):
			return quotaA.Load()
		case bytes.Equal(author[:], c.raw):
			return -1
		}
		return 0
	}}
	l := openMem(t, fs, cfg)
	over := func(au *author, want bool) {
		t.Helper()
		if got := l.OverQuota(au.tracker("other"), au.raw); got != want {
			t.Fatalf("OverQuota(author %x) = %v, want %v", au.raw[:4], got, want)
		}
	}
	mustAppend(t, l, chainA[0], Stored)
	mustAppend(t, l, chainA[1], Stored)
	mustAppend(t, l, chainA[2], OverQuota)
	over(a, true)
	mustAppend(t, l, chainB[0], Stored) // zero: AuthorQuota
	mustAppend(t, l, chainB[1], OverQuota)
	over(b, true)
	for _, ann := range chainC { // negative: none
		mustAppend(t, l, ann, Stored)
	}
	over(c, false)

	// a is trusted now: two more fit, then it is full again.
	quotaA.Store(size(chainA[:4]))
	over(a, false)
	mustAppend(t, l, chainA[2], Stored)
	mustAppend(t, l, chainA[3], Stored)
	mustAppend(t, l, chainA[4], OverQuota)
	over(a, true)
	// A lowered quota keeps it out.
	quotaA.Store(size(chainA[:1]))
	over(a, true)

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	quotaA.Store(size(chainA[:4]))
	l = openMem(t, fs, cfg)
	over(a, true) // at its quota: marked at Open
	over(b, true)
	over(c, false)
	quotaA.Store(-1)
	over(a, false)
	mustAppend(t, l, chainA[4], Stored)
}

// TestNoQuota: a negative quota is none.
func TestNoQuota(t *testing.T) {
	a := newAuthor(t, 1)
	chain := a.chain(a.tracker("x"), 3, "a")
	l := openMem(t, vfs.NewMem(), Config{AuthorQuota: -1, TrackerQuota: -1})
	for _, ann := range chain {
		mustAppend(t, l, ann, Stored)
	}
}

// TestDiskFull: below MinFree free space, appends and publishes are refused
// with ErrDiskFull and change nothing, reads go on, and storing resumes once
// space is freed.
func TestDiskFull(t *testing.T) {
	fs := vfs.NewMem()
	fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 30, TotalBytes: 4 << 30})
	a := newAuthor(t, 1)
	chain := a.chain(a.tracker("x"), 3, "a")
	l := openMem(t, fs, Config{MinFree: 256 << 20})
	mustAppend(t, l, chain[0], Stored)

	// The free space is read every 100 ms: an append may still go in
	// before the writer notices.
	fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 100 << 20, TotalBytes: 4 << 30})
	refused(t, l, chain[1])
	last := l.Last()
	_, err := l.Publish(context.Background(), a.key, []Draft{thingDraft(a.tracker("x"), "p", "1", "P")})
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "100.0 MiB free") {
		t.Fatalf("publish on a full disk: %v", err)
	}
	if _, err := l.Append(context.Background(), chain[2]); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append on a full disk: %v", err)
	}
	if es, err := l.Entries(0, 10); err != nil || uint64(len(es)) != last {
		t.Fatalf("reads on a full disk: %d entries, %v", len(es), err)
	}
	if s := l.Stats(); !s.DiskFull || s.DiskFree != 100<<20 || s.DiskRefused < 3 || s.Entries != last {
		t.Fatalf("stats %+v", s)
	}

	fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 30, TotalBytes: 4 << 30})
	resumed(t, l, chain[1])
	mustAppend(t, l, chain[2], Stored)
	if s := l.Stats(); s.DiskFull || s.Entries != 3 {
		t.Fatalf("stats after space was freed: %+v", s)
	}
}

// refused appends a until the log refuses it for want of space.
func refused(t *testing.T, l *Log, a *topics.Announcement) {
	t.Helper()
	wait.For(t, 10*time.Second, func() error {
		if _, err := l.Append(context.Background(), a); !errors.Is(err, ErrDiskFull) {
			return fmt.Errorf("append with the disk full: %v", err)
		}
		return nil
	})
}

// resumed appends a until the log takes it again.
func resumed(t *testing.T, l *Log, a *topics.Announcement) {
	t.Helper()
	wait.For(t, 10*time.Second, func() error {
		_, err := l.Append(context.Background(), a)
		return err
	})
}

// TestDiskFullOnTmpfs fills a real, small file system (a tmpfs this test
// mounts; root only) past the log's MinFree.
func TestDiskFullOnTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })

	a := newAuthor(t, 1)
	chain := a.chain(a.tracker("x"), 3, "a")
	l, err := Open(filepath.Join(dir, "log"), Config{MinFree: 24 << 20, CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mustAppend(t, l, chain[0], Stored)

	// Fill the disk until less than MinFree is left.
	filler := filepath.Join(dir, "filler")
	free := l.Stats().DiskFree
	if free < 24<<20 {
		t.Fatalf("only %d bytes free on a fresh 64 MiB tmpfs", free)
	}
	if err := os.WriteFile(filler, make([]byte, free-16<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	refused(t, l, chain[1])
	last := l.Last()
	if _, err := l.Append(context.Background(), chain[2]); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append on a full disk: %v", err)
	}
	if es, err := l.Entries(0, 10); err != nil || uint64(len(es)) != last {
		t.Fatalf("reads on a full disk: %d entries, %v", len(es), err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	resumed(t, l, chain[1])
	mustAppend(t, l, chain[2], Stored)
}

// TestQuotaCountsOldChains: chains stored before chain states counted their
// bytes are counted when the log opens.
func TestQuotaCountsOldChains(t *testing.T) {
	fs := vfs.NewMem()
	a := newAuthor(t, 1)
	chain := a.chain(a.tracker("x"), 5, "a")
	l := openMem(t, fs, Config{AuthorQuota: -1, TrackerQuota: -1})
	for _, ann := range chain[:3] {
		mustAppend(t, l, ann, Stored)
	}
	// Forget the count, as a log written before quotas has none.
	key := headKey(makeChainKey(a.tracker("x"), a.raw))
	v, closer, err := l.db.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	var c chainState
	if err := decodeState(v, &c); err != nil {
		t.Fatal(err)
	}
	closer.Close()
	c.Bytes = 0
	if v, err = encodeState(&c); err != nil {
		t.Fatal(err)
	}
	if err := l.db.Set(key, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Room for exactly one more: the count must be exact.
	cfg := Config{AuthorQuota: -1, TrackerQuota: size(chain[:4])}
	l = openMem(t, fs, cfg)
	mustAppend(t, l, chain[3], Stored)
	mustAppend(t, l, chain[4], OverQuota)
	if !l.OverQuota(a.tracker("x"), a.raw) {
		t.Fatal("a tracker holding its quota is not over it")
	}
	// The count was written back: the chain is not counted again (which
	// would start it from what the last append added, and lose the rest).
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openMem(t, fs, cfg)
	mustAppend(t, l, chain[4], OverQuota)
}
