package feed

import (
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/thingtracker/ttn/topics"
)

// Storage bounds (DESIGN, "The node process"): quotas per author and per
// tracker, and free space kept on the disk.

// usage is the envelope bytes stored by author and by tracker. The applied
// totals are owned by the writer; a txn keeps its own additions until it
// is applied.
type usage struct {
	authors  map[[32]byte]uint64
	trackers map[topics.TrackerID]uint64
}

func newUsage() usage {
	return usage{authors: make(map[[32]byte]uint64), trackers: make(map[topics.TrackerID]uint64)}
}

func (u usage) add(k chainKey, n uint64) {
	u.authors[[32]byte(k.author())] += n
	u.trackers[k.tracker()] += n
}

func (u usage) merge(v usage) {
	for a, n := range v.authors {
		u.authors[a] += n
	}
	for t, n := range v.trackers {
		u.trackers[t] += n
	}
}

// readUsage sums the bytes of every chain, from the chain states. A chain
// stored before its state counted bytes is counted from its envelopes, once,
// and its state rewritten.
func (l *Log) readUsage() (usage, error) {
	u := newUsage()
	uncounted := make(map[chainKey]*chainState)
	err := l.scan([]byte{prefixHead}, nil, func(k, v []byte) (bool, error) {
		var c chainState
		if len(k) != 1+len(chainKey{}) {
			return false, fmt.Errorf("feed: bad chain state key")
		}
		if err := decodeState(v, &c); err != nil {
			return false, fmt.Errorf("feed: chain state: %w", err)
		}
		if c.Bytes == 0 && c.Max > 0 {
			uncounted[chainKey(k[1:])] = &c
		}
		u.add(chainKey(k[1:]), c.Bytes)
		return true, nil
	})
	if err != nil || len(uncounted) == 0 {
		return u, err
	}
	b := l.db.NewBatch()
	defer b.Close()
	for k, c := range uncounted {
		err := l.scan(append([]byte{prefixChain}, k[:]...), nil, func(_, v []byte) (bool, error) {
			if len(v) < 64 {
				return false, fmt.Errorf("feed: bad chain record")
			}
			c.Bytes += uint64(len(v) - 64) // id, prev, then the envelope
			return true, nil
		})
		if err != nil {
			return u, err
		}
		v, err := encodeState(c)
		if err == nil {
			err = b.Set(headKey(k), v, nil)
		}
		if err != nil {
			return u, err
		}
		u.add(k, c.Bytes)
	}
	if err := l.db.Apply(b, pebble.Sync); err != nil {
		return u, fmt.Errorf("feed: count chain bytes: %w", err)
	}
	l.cfg.Logger.Info("counted the bytes of chains stored before quotas", "chains", len(uncounted))
	return u, nil
}

// authorQuota returns the quota of author: negative is none.
func (c *Config) authorQuota(author [32]byte) int64 {
	if c.AuthorQuotaOf != nil {
		if q := c.AuthorQuotaOf(author); q != 0 {
			return q
		}
	}
	return c.AuthorQuota
}

// atQuota reports whether storing n more bytes in chain k would pass its
// author's or its tracker's quota, and remembers which, for OverQuota.
func (t *txn) atQuota(k chainKey, n uint64) bool {
	cfg := &t.l.cfg
	author := [32]byte(k.author())
	if q := cfg.authorQuota(author); q >= 0 && t.l.usage.authors[author]+t.usage.authors[author]+n > uint64(q) {
		t.l.fullAuthors.Store(author, q)
		return true
	}
	if q := cfg.TrackerQuota; q >= 0 && t.l.usage.trackers[k.tracker()]+t.usage.trackers[k.tracker()]+n > uint64(q) {
		t.l.fullTrackers.Store(k.tracker(), q)
		return true
	}
	return false
}

// fullMargin is how close to its quota an author or tracker counts as
// full for OverQuota: about four announcements, or a sixteenth of a small
// quota.
const fullMargin = 4 << 10

// markFull remembers, for OverQuota, the authors and trackers of u that
// have less than fullMargin left: at Open for all, after each group for
// those it stored for.
func (l *Log) markFull(u usage) {
	full := func(has uint64, q int64) bool { return q >= 0 && has+min(fullMargin, uint64(q)/16) >= uint64(q) }
	for a := range u.authors {
		if q := l.cfg.authorQuota(a); full(l.usage.authors[a], q) {
			l.fullAuthors.Store(a, q)
		}
	}
	for t := range u.trackers {
		if q := l.cfg.TrackerQuota; full(l.usage.trackers[t], q) {
			l.fullTrackers.Store(t, q)
		}
	}
}

// OverQuota reports whether author (its raw key) or tracker is at its quota:
// what a peer holds above it is not worth fetching. The log only grows, so
// this stays true until a restart with other quotas, or, for an author,
// until Config.AuthorQuotaOf gives it a higher quota (or none).
func (l *Log) OverQuota(tracker topics.TrackerID, author []byte) bool {
	_, t := l.fullTrackers.Load(tracker)
	return t || len(author) == 32 && l.authorFull([32]byte(author))
}

// authorFull reports whether author was refused under the quota it has
// now, or a lower one. A mark left by a lower quota is dropped: the
// writer's next refusal under the new quota, if any, marks the author
// again (only the writer knows its usage).
func (l *Log) authorFull(author [32]byte) bool {
	v, ok := l.fullAuthors.Load(author)
	if !ok {
		return false
	}
	if q := l.cfg.authorQuota(author); q >= 0 && q <= v.(int64) {
		return true
	}
	l.fullAuthors.CompareAndDelete(author, v)
	return false
}

// diskCheckEvery is how often the free space is read: at the most an
// ingest can write in that time (some tens of MB) MinFree keeps room.
const diskCheckEvery = 100 * time.Millisecond

// checkDisk reads the free space when it is due and returns ErrDiskFull
// while it is below MinFree, saying so in a log line when that changes.
func (l *Log) checkDisk() error {
	if l.cfg.MinFree < 0 {
		return nil
	}
	l.diskMu.Lock()
	if now := time.Now(); now.Sub(l.checked) >= diskCheckEvery {
		l.checked = now
		if u, err := l.cfg.fs.GetDiskUsage(l.dir); err == nil { // else a file system that cannot tell
			l.free.Store(u.AvailBytes)
			full := u.AvailBytes < uint64(l.cfg.MinFree)
			if full != l.diskFull.Swap(full) {
				if full {
					l.cfg.Logger.Warn("disk nearly full: storing nothing until space is freed; reads go on",
						"free", mib(u.AvailBytes), "min_free", mib(uint64(l.cfg.MinFree)), "dir", l.dir)
				} else {
					l.cfg.Logger.Info("disk space freed: storing again", "free", mib(u.AvailBytes), "dir", l.dir)
				}
			}
		}
	}
	l.diskMu.Unlock()
	if l.diskFull.Load() {
		return fmt.Errorf("%w: %s free, under the %s kept free (--min-free); nothing stored",
			ErrDiskFull, mib(l.free.Load()), mib(uint64(l.cfg.MinFree)))
	}
	return nil
}

// DiskFull reports whether the log's disk has less free space than MinFree:
// appends are refused until space is freed.
func (l *Log) DiskFull() bool { return l.checkDisk() != nil }

// mib formats a byte count in MiB.
func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
