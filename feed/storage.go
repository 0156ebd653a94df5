package feed

import (
	"fmt"
	"time"

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

// readUsage sums the bytes of every chain, from the chain states.
func (l *Log) readUsage() (usage, error) {
	u := newUsage()
	err := l.scan([]byte{prefixHead}, nil, func(k, v []byte) (bool, error) {
		var c chainState
		if len(k) != 1+len(chainKey{}) {
			return false, fmt.Errorf("feed: bad chain state key")
		}
		if err := decodeState(v, &c); err != nil {
			return false, fmt.Errorf("feed: chain state: %w", err)
		}
		u.add(chainKey(k[1:]), c.Bytes)
		return true, nil
	})
	return u, err
}

// checkQuota says why storing n more bytes in chain k would pass a quota, or
// returns nil. An author or tracker found at its quota is remembered, for
// OverQuota.
func (t *txn) checkQuota(k chainKey, n uint64) error {
	cfg := &t.l.cfg
	author := [32]byte(k.author())
	if q := cfg.AuthorQuota; q >= 0 {
		if has := t.l.usage.authors[author] + t.usage.authors[author]; has+n > uint64(q) {
			t.l.fullAuthors.Store(author, true)
			return fmt.Errorf("%w: author has %s stored, quota %s", ErrOverQuota, mib(has), mib(uint64(q)))
		}
	}
	if q := cfg.TrackerQuota; q >= 0 {
		if has := t.l.usage.trackers[k.tracker()] + t.usage.trackers[k.tracker()]; has+n > uint64(q) {
			t.l.fullTrackers.Store(k.tracker(), true)
			return fmt.Errorf("%w: tracker %s has %s stored, quota %s", ErrOverQuota, k.tracker(), mib(has), mib(uint64(q)))
		}
	}
	return nil
}

// OverQuota reports whether an append of author (its raw key) on tracker
// has been refused for a quota since the log opened: what is above it is
// not worth fetching. The log only grows, so this stays true until a
// restart with other quotas.
func (l *Log) OverQuota(tracker topics.TrackerID, author []byte) bool {
	_, a := l.fullAuthors.Load([32]byte(author))
	_, t := l.fullTrackers.Load(tracker)
	return a || t
}

// diskCheckEvery is how often the writer reads the free space: at the most
// an ingest can write in that time (some tens of MB) MinFree keeps room.
const diskCheckEvery = 100 * time.Millisecond

// checkDisk reads the free space when it is due and returns ErrDiskFull
// while it is below MinFree, saying so in a log line when that changes.
// Called by the writer (and by Open, before it starts).
func (l *Log) checkDisk() error {
	if l.cfg.MinFree < 0 {
		return nil
	}
	if now := time.Now(); now.Sub(l.checked) >= diskCheckEvery {
		l.checked = now
		u, err := l.cfg.fs.GetDiskUsage(l.dir)
		if err != nil {
			return nil // a file system that cannot tell (tests' in-memory one)
		}
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
	if l.diskFull.Load() {
		return fmt.Errorf("%w: %s free, under the %s kept free (--min-free); nothing stored",
			ErrDiskFull, mib(l.free.Load()), mib(uint64(l.cfg.MinFree)))
	}
	return nil
}

// mib formats a byte count in MiB.
func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
