package feed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// Errors.
var (
	ErrClosed         = errors.New("feed: log closed")
	ErrNotFound error = notFound{} // it is a view.ErrNotFound too
	ErrNotOwner       = errors.New("feed: author does not own the tracker")
	// ErrDiskFull: the disk has less free space than Config.MinFree;
	// nothing was stored. Reads go on.
	ErrDiskFull = errors.New("feed: disk nearly full")
)

// notFound is ErrNotFound: "feed: not found", which errors.Is also takes
// for view.ErrNotFound, the query APIs' not found.
type notFound struct{}

func (notFound) Error() string        { return "feed: not found" }
func (notFound) Is(target error) bool { return target == view.ErrNotFound }

// Config configures a Log. The zero value of each field means its default.
type Config struct {
	// Logger receives the log's and Pebble's messages. Nil discards them.
	Logger *slog.Logger
	// MaxBatch is the most appends that share one commit and fsync.
	// Zero means 1024.
	MaxBatch int
	// MaxGaps is how many missing ranges a chain may have; an entry that
	// would open one more is ignored until the gaps below it are repaired.
	// Zero means 64.
	MaxGaps int
	// Now is the clock stamped on published announcements. Nil means time.Now.
	Now func() time.Time
	// CacheSize is Pebble's block cache in bytes. Zero means 64 MiB.
	CacheSize int64
	// MinFree is the free space, in bytes, the log leaves on its disk:
	// below it appends and publishes are refused with ErrDiskFull (reads go
	// on) until space is freed. Zero means 256 MiB; negative, no check.
	MinFree int64
	// AuthorQuota and TrackerQuota bound the envelope bytes stored for one
	// author (all its trackers) and for one tracker: an append that would
	// pass either is refused (OverQuota), but for the log's own publishes
	// and fork evidence. Zero means 1 GiB and 512 MiB; negative, no quota.
	AuthorQuota, TrackerQuota int64
	// AuthorQuotaOf, when set, gives each author's quota (author is its raw
	// key), so that it can follow what the node thinks of the author:
	// negative is none, zero is AuthorQuota. Nil means AuthorQuota for all.
	// A quota may change between calls: a raised one lets the author in
	// again (OverQuota stops reporting it), a lowered one bites from the
	// author's next append. It is called by the writer for every append
	// from another author, at Open, and by OverQuota, so it must be cheap,
	// safe for concurrent use, and must not call back into the log.
	AuthorQuotaOf func(author [32]byte) int64

	fs vfs.FS // tests: Pebble's in-memory and crashable file systems
}

// DefaultConfig returns the configuration with every default filled in.
func DefaultConfig() Config {
	return Config{
		Logger:    slog.New(slog.DiscardHandler),
		MaxBatch:  1024, // appends per fsync
		MaxGaps:   64,   // missing ranges per chain
		Now:       time.Now,
		CacheSize: 64 << 20, // keeps index, filter and recent blocks in memory
		// Room for Pebble's compactions and the rest of the machine.
		MinFree:      256 << 20,
		AuthorQuota:  1 << 30,   // a million 1 KB announcements
		TrackerQuota: 512 << 20, // half a million
		fs:           vfs.Default,
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = d.MaxBatch
	}
	if c.MaxGaps == 0 {
		c.MaxGaps = d.MaxGaps
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.CacheSize == 0 {
		c.CacheSize = d.CacheSize
	}
	for _, f := range []struct{ v, d *int64 }{{&c.MinFree, &d.MinFree}, {&c.AuthorQuota, &d.AuthorQuota}, {&c.TrackerQuota, &d.TrackerQuota}} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	if c.fs == nil {
		c.fs = d.fs
	}
	var errs []error
	if c.MaxBatch < 1 {
		errs = append(errs, fmt.Errorf("feed: MaxBatch %d: want at least 1", c.MaxBatch))
	}
	if c.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("feed: CacheSize %d: want 0 or more", c.CacheSize))
	}
	if c.MaxGaps < 1 {
		errs = append(errs, fmt.Errorf("feed: MaxGaps %d: want at least 1", c.MaxGaps))
	}
	return c, errors.Join(errs...)
}

// Log is the append-only announcement log: every accepted envelope once, in
// arrival order, with chain, fork, Thing and tracker state derived from it.
// All methods may be called concurrently. Appends and publishes are
// serialised through one writer goroutine that commits them in groups: an
// append returns only once its group is durable on disk (one fsync per
// group), so many concurrent appends share one fsync.
type Log struct {
	cfg Config
	dir string
	db  *pebble.DB

	reqs    chan *request
	syncs   chan *pending // applied groups waiting for their fsync, in order
	closing chan struct{}
	done    chan struct{} // the writer and the syncer have exited
	once    sync.Once

	// rw guards db against use after Close: readers hold it shared.
	rw     sync.RWMutex
	closed bool

	mu     sync.Mutex
	last   uint64        // the last durable cursor
	wake   chan struct{} // closed and replaced at every commit
	failed error         // set when an fsync failed: the log refuses writes

	// Owned by the writer goroutine.
	applied  uint64                   // the last cursor applied (maybe not yet durable)
	chains   map[chainKey]*chainState // applied chain states
	retracts map[topics.ID]topics.ID  // applied pending retractions: target → retraction
	usage    usage                    // applied envelope bytes by author and tracker

	// Key states of rotated or committed authors, by inception key, and
	// the authors of rotated-in keys, by current key; read by publishers
	// outside the writer.
	keysMu  sync.RWMutex
	keys    map[[32]byte]*keyState
	current map[[32]byte][32]byte
	// marked: the store says it keeps key states and the ancestry index
	// (writer only; see writeMarks).
	marked bool

	diskMu   sync.Mutex
	checked  time.Time     // when the free space was last read
	diskFull atomic.Bool   // free space is below MinFree
	free     atomic.Uint64 // free space when last read
	// Authors ([32]byte) and trackers an append was refused for, by quota,
	// each with the quota (int64) that refused it.
	fullAuthors, fullTrackers sync.Map

	stats stats
}

type stats struct {
	appended, duplicates, forks, frozen, gapLimited atomic.Uint64
	overQuota, diskRefused                          atomic.Uint64
	void, unplaced, refused, voided                 atomic.Uint64
	commits, maxGroup                               atomic.Uint64
}

// Open opens (creating if needed) the log in dir.
func Open(dir string, cfg Config) (*Log, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	opts := &pebble.Options{
		FS:                 cfg.fs,
		Logger:             pebbleLogger{cfg.Logger},
		FormatMajorVersion: pebble.FormatNewest,
		CacheSize:          cfg.CacheSize,
		MemTableSize:       32 << 20, // fewer, larger flushes
	}
	// Envelopes (about 1 KB each) go to blob files and are not rewritten by
	// compactions; keys and small state records stay in the LSM.
	opts.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled:               true,
			MinimumSize:           256,
			MaxBlobReferenceDepth: 10,
			RewriteMinimumAge:     5 * time.Minute,
			TargetGarbageRatio:    0.2,
		}
	}
	// Bloom filters: most ID lookups are for announcements not yet stored.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("feed: open %s: %w", dir, err)
	}
	l := &Log{
		cfg:     cfg,
		dir:     dir,
		db:      db,
		reqs:    make(chan *request, cfg.MaxBatch),
		syncs:   make(chan *pending, syncDepth),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		wake:    make(chan struct{}),
		chains:  make(map[chainKey]*chainState),
	}
	if l.last, err = l.readLastCursor(); err != nil {
		db.Close()
		return nil, err
	}
	l.applied = l.last
	if l.retracts, err = l.readPendingRetracts(); err != nil {
		db.Close()
		return nil, err
	}
	if l.usage, err = l.readUsage(); err != nil {
		db.Close()
		return nil, err
	}
	if err := l.indexRecords(); err != nil {
		db.Close()
		return nil, err
	}
	if err := l.readKeyStates(); err != nil {
		db.Close()
		return nil, err
	}
	if err := l.indexAncestry(); err != nil {
		db.Close()
		return nil, err
	}
	l.markFull(l.usage)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.writer() }()
	go func() { defer wg.Done(); l.syncer() }()
	go func() { wg.Wait(); close(l.done) }()
	return l, nil
}

func (l *Log) readLastCursor() (uint64, error) {
	v, closer, err := l.db.Get(keyLastCursor)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("feed: read cursor: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("feed: bad cursor record")
	}
	return binary.BigEndian.Uint64(v), nil
}

// readPendingRetracts loads the retractions whose targets are not stored yet.
// They are rare, so the writer keeps them all in memory.
func (l *Log) readPendingRetracts() (map[topics.ID]topics.ID, error) {
	m := make(map[topics.ID]topics.ID)
	err := l.scan([]byte{prefixRetract}, nil, func(k, v []byte) (bool, error) {
		if len(k) != 33 || len(v) != 32 {
			return false, fmt.Errorf("feed: bad pending retraction record")
		}
		m[topics.ID(k[1:])] = topics.ID(v)
		return true, nil
	})
	return m, err
}

// Close stops the writer after the requests already queued, then closes the
// store. It is safe to call more than once.
func (l *Log) Close() error {
	var err error
	l.once.Do(func() {
		close(l.closing)
		<-l.done
		l.rw.Lock()
		l.closed = true
		err = l.db.Close()
		l.rw.Unlock()
		l.mu.Lock()
		close(l.wake) // release waiting readers; they see ErrClosed
		l.mu.Unlock()
	})
	return err
}

// Status says what Append did with an announcement.
type Status int

const (
	// Stored: new, stored at Cursor.
	Stored Status = iota
	// Duplicate: this announcement ID is already stored (at Cursor).
	Duplicate
	// Forked: a second, conflicting entry for a place in its chain; stored at
	// Cursor as evidence, and the chain is now frozen.
	Forked
	// Frozen: the chain is frozen by an earlier fork; not stored.
	Frozen
	// GapLimited: storing it would open more missing ranges than the chain
	// may have; not stored.
	GapLimited
	// OverQuota: storing it would pass its author's or its tracker's quota
	// (Config.AuthorQuota or AuthorQuotaOf, TrackerQuota); not stored.
	OverQuota
	// Void: signed by a key the author rotated away from, past the heads
	// the rotation vouches for (or after the author retired); not stored.
	Void
	// Unplaced: the signer is none of the author's keys the log knows (it
	// may lack the author's rotate record), or a rotate names a key while
	// the log holds no commitment to check it by; not stored. Fetch the
	// author's node tracker, then the announcement again.
	Unplaced
	// Refused: a rotate to a key other than the one its author committed
	// to, or after the author retired; not stored.
	Refused
)

func (s Status) String() string {
	switch s {
	case Stored:
		return "stored"
	case Duplicate:
		return "duplicate"
	case Forked:
		return "forked"
	case Frozen:
		return "frozen"
	case GapLimited:
		return "gap-limited"
	case OverQuota:
		return "over-quota"
	case Void:
		return "void"
	case Unplaced:
		return "unplaced"
	case Refused:
		return "refused"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Outcome maps the status onto validation: only Stored is accepted (and so
// forwarded); a fork is kept as evidence but not forwarded.
func (s Status) Outcome() topics.Outcome {
	if s == Stored {
		return topics.Accept
	}
	return topics.Ignore
}

// Result is what Append did.
type Result struct {
	Status Status
	Cursor uint64 // where it is stored (Stored, Duplicate, Forked)
	// Gaps is true when the announcement's chain misses entries below its
	// highest seq: something to repair from peers.
	Gaps bool
}

// request is one unit of work for the writer: appends or a publish.
type request struct {
	anns []*topics.Announcement

	key    crypto.PrivKey
	drafts []*draft
	rotate *rotateRequest

	reply chan reply
}

type reply struct {
	res  []Result
	pubs []Published
	err  error
}

// Append stores a validated announcement (one that topics.Validate or
// topics.Check returned) and returns once it is durable. It blocks until its
// group commits or ctx is done.
func (l *Log) Append(ctx context.Context, a *topics.Announcement) (Result, error) {
	rs, err := l.AppendAll(ctx, []*topics.Announcement{a})
	if err != nil {
		return Result{}, err
	}
	return rs[0], nil
}

// AppendAll stores validated announcements in order, as one group, and
// returns once they are durable.
func (l *Log) AppendAll(ctx context.Context, anns []*topics.Announcement) ([]Result, error) {
	for _, a := range anns {
		if !a.Payload.Tracker.OwnedBy(a.AuthorKey) {
			return nil, ErrNotOwner
		}
	}
	r, err := l.do(ctx, &request{anns: anns})
	return r.res, err
}

func (l *Log) do(ctx context.Context, r *request) (reply, error) {
	r.reply = make(chan reply, 1)
	select {
	case l.reqs <- r:
	case <-l.closing:
		return reply{}, ErrClosed
	case <-ctx.Done():
		return reply{}, ctx.Err()
	}
	select {
	case rep := <-r.reply:
		return rep, rep.err
	case <-l.done:
		// The writer may have answered just before it exited.
		select {
		case rep := <-r.reply:
			return rep, rep.err
		default:
			return reply{}, ErrClosed
		}
	case <-ctx.Done():
		return reply{}, ctx.Err()
	}
}

// syncDepth is how many applied groups may wait for their fsync while the
// writer applies the next: Pebble syncs the WAL once for all of them.
const syncDepth = 8

// writer is the one goroutine that changes the log.
func (l *Log) writer() {
	defer close(l.syncs)
	group := make([]*request, 0, l.cfg.MaxBatch)
	for {
		group = group[:0]
		select {
		case r := <-l.reqs:
			group = append(group, r)
		case <-l.closing:
			// Finish what is already queued, then stop.
			for {
				select {
				case r := <-l.reqs:
					group = append(group, r)
					if len(group) == l.cfg.MaxBatch {
						l.applyGroup(group)
						group = make([]*request, 0, l.cfg.MaxBatch)
					}
				default:
					if len(group) > 0 {
						l.applyGroup(group)
					}
					return
				}
			}
		}
	fill:
		for len(group) < l.cfg.MaxBatch {
			select {
			case r := <-l.reqs:
				group = append(group, r)
			default:
				break fill
			}
		}
		l.applyGroup(group)
		group = make([]*request, 0, l.cfg.MaxBatch)
	}
}

// pending is an applied group waiting for its fsync.
type pending struct {
	t       *txn // nil when there was nothing to write
	group   []*request
	replies []reply
}

// applyGroup applies a group of requests in one batch and hands it to the
// syncer, which answers the requests once the batch is durable. A publish
// that fails its preconditions is answered with its error at once and the
// group is applied again without it, so a failed publish changes nothing.
func (l *Log) applyGroup(group []*request) {
	l.mu.Lock()
	failed := l.failed
	l.mu.Unlock()
	if failed == nil {
		if failed = l.checkDisk(); failed != nil {
			for _, r := range group {
				l.stats.diskRefused.Add(uint64(max(len(r.anns), len(r.drafts))))
			}
		}
	}
	if failed != nil {
		for _, r := range group {
			r.reply <- reply{err: failed}
		}
		return
	}
	for {
		t := l.newTxn()
		replies := make([]reply, len(group))
		bad := -1
		for i, r := range group {
			if r.rotate != nil {
				var p Published
				p, replies[i].err = t.publishRotate(r.key, r.rotate)
				replies[i].pubs = []Published{p}
				if replies[i].err != nil {
					bad = i
					break
				}
			} else if r.drafts == nil {
				replies[i].res = make([]Result, len(r.anns))
				for j, a := range r.anns {
					if replies[i].res[j], replies[i].err = t.append(a, topics.ID{}); replies[i].err != nil {
						break
					}
				}
			} else {
				replies[i].pubs, replies[i].err = t.publish(r.key, r.drafts)
				if replies[i].err != nil {
					bad = i
					break
				}
			}
		}
		if bad >= 0 {
			t.discard()
			group[bad].reply <- replies[bad]
			group = append(group[:bad:bad], group[bad+1:]...)
			if len(group) == 0 {
				return
			}
			continue
		}
		wrote, err := t.apply()
		if err != nil {
			t.discard()
			l.chains = make(map[chainKey]*chainState) // reload from the store
			if l.retracts, err = l.readPendingRetracts(); err != nil {
				l.cfg.Logger.Error("reload pending retractions", "err", err)
			}
			for _, r := range group {
				r.reply <- reply{err: err}
			}
			return
		}
		p := &pending{group: group, replies: replies}
		if wrote {
			p.t = t
		} else {
			t.discard()
		}
		l.syncs <- p
		if n := uint64(len(group)); n > l.stats.maxGroup.Load() {
			l.stats.maxGroup.Store(n)
		}
		return
	}
}

// syncer waits for each applied group's fsync, in order, then makes the
// group visible to readers and answers its requests.
func (l *Log) syncer() {
	for p := range l.syncs {
		var err error
		if p.t != nil {
			err = p.t.b.SyncWait()
			p.t.b.Close()
			if err != nil {
				err = fmt.Errorf("feed: fsync: %w", err)
				l.cfg.Logger.Error("log write failed; refusing further writes", "err", err)
				l.mu.Lock()
				l.failed = err
				l.mu.Unlock()
			} else {
				l.stats.commits.Add(1)
				l.committed(p.t.last)
			}
		}
		for i, r := range p.group {
			if err != nil {
				p.replies[i] = reply{err: err}
			}
			r.reply <- p.replies[i]
		}
	}
}

// Last returns the last committed cursor (0 for an empty log).
func (l *Log) Last() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Wait blocks until the log holds an entry after cursor, ctx is done, or the
// log closes.
func (l *Log) Wait(ctx context.Context, cursor uint64) error {
	for {
		l.mu.Lock()
		last, wake := l.last, l.wake
		l.mu.Unlock()
		if last > cursor {
			return nil
		}
		select {
		case <-wake:
			select {
			case <-l.done:
				if l.Last() <= cursor {
					return ErrClosed
				}
			default:
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *Log) committed(last uint64) {
	l.mu.Lock()
	l.last = last
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// Flush writes everything in memory to the store's files and waits for it:
// for measurements of the size on disk and for tests.
func (l *Log) Flush() error {
	return l.view(func() error { return l.db.Flush() })
}

// Stats is a snapshot of the log's counters.
type Stats struct {
	Entries    uint64 `json:"entries"`     // last cursor: entries stored, fork evidence included
	Appended   uint64 `json:"appended"`    // appends stored since open
	Duplicates uint64 `json:"duplicates"`  // appends already stored
	Forks      uint64 `json:"forks"`       // forks detected since open
	Frozen     uint64 `json:"frozen"`      // appends refused because their chain is frozen
	GapLimited uint64 `json:"gap_limited"` // appends refused by the per-chain gap cap
	OverQuota  uint64 `json:"over_quota"`  // appends refused by an author's or tracker's quota
	// DiskFull says the disk has less free space than the log leaves
	// (MinFree): appends and publishes are refused, reads go on.
	DiskFull    bool   `json:"disk_full"`
	DiskFree    uint64 `json:"disk_free"`    // free bytes on the log's disk, when last read
	DiskRefused uint64 `json:"disk_refused"` // announcements refused for want of space
	Commits     uint64 `json:"commits"`      // group commits (fsyncs) since open
	MaxGroup    uint64 `json:"max_group"`    // the largest group committed at once
	DiskBytes   uint64 `json:"disk_bytes"`   // the store's size on disk, write-ahead log included
	DataBytes   uint64 `json:"data_bytes"`   // the size of the store's tables and blob files
	// Key rotation: appends refused as void (an old key past the heads its
	// author vouched for), unplaced (a signer the log cannot place) or
	// refused (a rotate to a key not committed to), and held entries
	// voided by a rotation since open.
	Void     uint64 `json:"void,omitempty"`
	Unplaced uint64 `json:"unplaced,omitempty"`
	Refused  uint64 `json:"refused,omitempty"`
	Voided   uint64 `json:"voided,omitempty"`
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	s := Stats{
		Entries:     l.Last(),
		Appended:    l.stats.appended.Load(),
		Duplicates:  l.stats.duplicates.Load(),
		Forks:       l.stats.forks.Load(),
		Frozen:      l.stats.frozen.Load(),
		GapLimited:  l.stats.gapLimited.Load(),
		OverQuota:   l.stats.overQuota.Load(),
		Void:        l.stats.void.Load(),
		Unplaced:    l.stats.unplaced.Load(),
		Refused:     l.stats.refused.Load(),
		Voided:      l.stats.voided.Load(),
		DiskFull:    l.DiskFull(), // read again when due, even on an idle log
		DiskFree:    l.free.Load(),
		DiskRefused: l.stats.diskRefused.Load(),
		Commits:     l.stats.commits.Load(),
		MaxGroup:    l.stats.maxGroup.Load(),
	}
	l.rw.RLock()
	if !l.closed {
		m := l.db.Metrics()
		s.DiskBytes = m.DiskSpaceUsage()
		s.DataBytes = m.Table.Local.LiveSize + m.BlobFiles.Local.LiveSize
	}
	l.rw.RUnlock()
	return s
}

// pebbleLogger sends Pebble's messages to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by Pebble for unrecoverable store corruption; Pebble
// expects it not to return.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble")
	panic("feed: pebble: " + msg)
}

var _ io.Closer = (*Log)(nil)
