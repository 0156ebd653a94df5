package feed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/thingtracker/ttn/topics"
)

// txn is one group being applied by the writer: a Pebble batch plus an
// overlay of everything the group has changed so far, so that each request
// sees the ones before it. Nothing is visible to readers until commit.
type txn struct {
	l    *Log
	b    *pebble.Batch
	last uint64 // the last cursor assigned

	ids      map[topics.ID]uint64
	links    map[pos]link
	anns     map[uint64]*topics.Announcement // stored by this group, by cursor
	chains   map[chainKey]*chainState
	rows     map[string][]thingRow              // Thing rows written by this group, by thingPrefix
	trackers map[topics.TrackerID]*TrackerState // tracker states changed by this group
	retracts map[topics.ID]topics.ID            // pending retractions by target; zero = consumed
	records  map[string]recordRef               // standing trust records and flags changed, by index key
	keys     map[[32]byte]*keyState             // key states changed, by inception key
	usage    usage                              // envelope bytes this group stores

	appended, duplicates, forks, frozen, gapLimited, overQuota uint64
	void, unplaced, refused, voided                            uint64
}

func (l *Log) newTxn() *txn {
	return &txn{
		l:        l,
		b:        l.db.NewBatch(),
		last:     l.applied,
		ids:      make(map[topics.ID]uint64),
		links:    make(map[pos]link),
		anns:     make(map[uint64]*topics.Announcement),
		chains:   make(map[chainKey]*chainState),
		rows:     make(map[string][]thingRow),
		trackers: make(map[topics.TrackerID]*TrackerState),
		retracts: make(map[topics.ID]topics.ID),
		records:  make(map[string]recordRef),
		keys:     make(map[[32]byte]*keyState),
		usage:    newUsage(),
	}
}

func (t *txn) discard() { t.b.Close() }

// get reads an applied value (a copy), or nil if absent.

// apply writes the overlay's states into the batch and applies it to the
// store without waiting for the fsync: the writer goes on with the next group
// while the syncer waits. It reports whether there was anything to write.
func (t *txn) apply() (bool, error) {
	st := &t.l.stats
	st.duplicates.Add(t.duplicates)
	st.frozen.Add(t.frozen)
	st.gapLimited.Add(t.gapLimited)
	st.overQuota.Add(t.overQuota)
	st.void.Add(t.void)
	st.unplaced.Add(t.unplaced)
	st.refused.Add(t.refused)
	if t.last == t.l.applied {
		return false, nil // only duplicates and refusals: nothing to write
	}
	var errs []error
	set := func(key []byte, v any) {
		b, err := encodeState(v)
		errs = append(errs, err)
		errs = append(errs, t.b.Set(key, b, nil))
	}
	for k, c := range t.chains {
		set(headKey(k), c)
	}
	for id, s := range t.trackers {
		set(trackerKey(id), s)
	}
	for target, id := range t.retracts {
		if id.IsZero() {
			errs = append(errs, t.b.Delete(retractKey(target), nil))
		} else {
			errs = append(errs, t.b.Set(retractKey(target), id[:], nil))
		}
	}
	errs = append(errs, t.writeRecords(), t.writeKeyStates(), t.writeMarks())
	errs = append(errs, t.b.Set(keyLastCursor, binary.BigEndian.AppendUint64(nil, t.last), nil))
	if err := errors.Join(errs...); err != nil {
		return false, fmt.Errorf("feed: build batch: %w", err)
	}
	if err := t.l.db.ApplyNoSyncWait(t.b, pebble.Sync); err != nil {
		return false, fmt.Errorf("feed: commit: %w", err)
	}
	for k, c := range t.chains {
		t.l.chains[k] = c
	}
	for target, id := range t.retracts {
		if id.IsZero() {
			delete(t.l.retracts, target)
		} else {
			t.l.retracts[target] = id
		}
	}
	for author, s := range t.keys {
		t.l.setKeyState(author, s)
	}
	t.l.marked = true
	st.voided.Add(t.voided)
	t.l.usage.merge(t.usage)
	t.l.markFull(t.usage)
	t.l.applied = t.last
	st.appended.Add(t.appended)
	st.forks.Add(t.forks)
	return true, nil
}

// get reads a committed value (a copy), or nil if absent.
func (t *txn) get(key []byte) ([]byte, error) {
	v, closer, err := t.l.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return slices.Clone(v), nil
}

// cursorOf returns where id is stored, or 0.
func (t *txn) cursorOf(id topics.ID) (uint64, error) {
	if c, ok := t.ids[id]; ok {
		return c, nil
	}
	v, err := t.get(idKey(id))
	if err != nil || v == nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// chain returns the group's copy of a chain's state, to be changed.
func (t *txn) chain(k chainKey) (*chainState, error) {
	if c, ok := t.chains[k]; ok {
		return c, nil
	}
	c, ok := t.l.chains[k]
	if !ok {
		c = new(chainState)
		v, err := t.get(headKey(k))
		if err != nil {
			return nil, err
		}
		if v != nil {
			if err := decodeState(v, c); err != nil {
				return nil, fmt.Errorf("feed: chain state: %w", err)
			}
		}
		t.l.chains[k] = c
	}
	c = c.clone()
	t.chains[k] = c
	return c, nil
}

// linkAt returns the id and prev of the envelope stored at p.
func (t *txn) linkAt(p pos) (link, error) {
	if lk, ok := t.links[p]; ok {
		return lk, nil
	}
	v, err := t.get(p.key())
	if err != nil {
		return link{}, err
	}
	if v == nil {
		return link{}, fmt.Errorf("feed: chain entry %d missing", p.seq)
	}
	lk, _, err := decodeChainValue(v)
	return lk, err
}

// thing returns the state of a Thing as applied, including this group.
func (t *txn) thing(tracker topics.TrackerID, id string) (*ThingState, error) {
	rows, err := scanThingRows(t.l, tracker, id)
	if err != nil {
		return nil, err
	}
	rows = append(rows, t.rows[string(thingPrefix(0, tracker, id, true))]...)
	return buildThing(tracker, id, rows), nil
}

// tracker returns the group's copy of a tracker's state, to be changed.
func (t *txn) tracker(id topics.TrackerID) (*TrackerState, error) {
	if s, ok := t.trackers[id]; ok {
		return s, nil
	}
	v, err := t.get(trackerKey(id))
	if err != nil {
		return nil, err
	}
	s := &TrackerState{ID: id}
	if v != nil {
		if err := decodeState(v, s); err != nil {
			return nil, fmt.Errorf("feed: tracker state: %w", err)
		}
	}
	t.trackers[id] = s
	return s, nil
}

// announcementAt returns the announcement stored at cursor, decoded (its
// signature was checked when it was appended).
func (t *txn) announcementAt(cursor uint64) (*topics.Announcement, error) {
	if a, ok := t.anns[cursor]; ok {
		return a, nil
	}
	return readAnnouncement(t.get, cursor)
}

// append applies one validated announcement. hash is its body hash when
// known (own publishes), else zero.
func (t *txn) append(a *topics.Announcement, hash topics.ID) (Result, error) {
	// The signer first: only an entry its author's key state places may
	// touch the chain. A rotate voids what its heads do not vouch for
	// before it takes its own place (a rotate already applied is a
	// duplicate, not a second rotation to judge).
	isRotate := a.Payload.Kind == topics.KindRotate && !a.Payload.Opaque()
	if isRotate {
		if cur, err := t.cursorOf(a.ID); err != nil || cur != 0 {
			t.duplicates++
			return Result{Status: Duplicate, Cursor: cur}, err
		}
	}
	switch t.judge(a) {
	case void:
		if cur, err := t.cursorOf(a.ID); err != nil || cur != 0 {
			return Result{Status: Duplicate, Cursor: cur}, err // voided since it was stored
		}
		t.void++
		return Result{Status: Void}, nil
	case unplaced:
		t.unplaced++
		return Result{Status: Unplaced}, nil
	case refusedRotate:
		t.refused++
		return Result{Status: Refused}, nil
	}
	if isRotate {
		if err := t.rotate(a); err != nil {
			return Result{}, err
		}
	}
	k := makeChainKey(a.Payload.Tracker, a.AuthorKey)
	c, err := t.chain(k)
	if err != nil {
		return Result{}, err
	}
	seq := a.Payload.Seq
	// Every stored envelope sits at its place in its chain, or, once the
	// chain is frozen, may be fork evidence: only then can it be stored
	// already, and only then is the ID index consulted.
	if c.Fork != nil || c.present(seq) {
		if cur, err := t.cursorOf(a.ID); err != nil || cur != 0 {
			if cur != 0 {
				t.duplicates++
			}
			return Result{Status: Duplicate, Cursor: cur}, err
		}
		if c.Fork != nil {
			t.frozen++
			return Result{Status: Frozen}, nil
		}
	}
	first := c.Max == 0 // the tracker's first entry: its owner is the only author
	fork, variant, err := t.conflicts(k, c, a)
	if err != nil {
		return Result{}, err
	}
	if fork == nil && len(c.gapsWith(seq)) > t.l.cfg.MaxGaps {
		t.gapLimited++
		return Result{Status: GapLimited, Gaps: true}, nil
	}
	// Quotas bound what others make this node store: not its own publishes,
	// nor fork evidence (at most one more envelope, and then the chain is
	// frozen).
	size := uint64(len(a.Env.Raw))
	if hash.IsZero() && fork == nil && !isRotate {
		if t.atQuota(k, size) {
			t.overQuota++
			return Result{Status: OverQuota}, nil
		}
	}
	c.Bytes += size
	t.usage.add(k, size)

	t.last++
	cursor := t.last
	p := pos{k, seq, variant}
	ref := entryRef{id: a.ID, pos: p, kind: a.Payload.Kind}
	errs := errors.Join(
		t.b.Set(p.key(), chainValue(a), nil),
		t.b.Set(entryKey(cursor), ref.encode(), nil),
		t.b.Set(idKey(a.ID), binary.BigEndian.AppendUint64(nil, cursor), nil),
	)
	if errs != nil {
		return Result{}, errs
	}
	t.ids[a.ID] = cursor
	t.links[p] = link{id: a.ID, prev: a.Payload.Prev}
	t.anns[cursor] = a
	// Fork evidence is indexed too: the author signed it (see records.go).
	if err := t.indexRecord(a, cursor); err != nil {
		return Result{}, err
	}
	if variant == 0 {
		if err := t.place(k, c, seq, a.ID); err != nil {
			return Result{}, err
		}
	}
	if fork != nil {
		c.Fork = fork
		t.forks++
		t.l.cfg.Logger.Warn("fork detected; chain frozen", "tracker", a.Payload.Tracker.String(),
			"author", a.Payload.Author, "seq", fork.Seq, "reason", fork.Reason)
		return Result{Status: Forked, Cursor: cursor}, nil
	}
	t.appended++
	t.noteCommitment(a)
	if err := t.applyState(a, cursor, hash, first); err != nil {
		return Result{}, err
	}
	return Result{Status: Stored, Cursor: cursor, Gaps: len(c.Gaps) > 0}, nil
}

// conflicts checks a against its neighbours in the chain. It returns fork
// evidence if a contradicts what is stored, and the variant a is stored as.
func (t *txn) conflicts(k chainKey, c *chainState, a *topics.Announcement) (*Fork, byte, error) {
	seq := a.Payload.Seq
	if c.present(seq) {
		lk, err := t.linkAt(pos{k, seq, 0})
		if err != nil {
			return nil, 0, err
		}
		return &Fork{Seq: seq, A: lk.id, B: a.ID,
			Reason: fmt.Sprintf("two different entries for seq %d", seq)}, 1, nil
	}
	if seq > 1 && c.present(seq-1) {
		prev := c.MaxID
		if seq-1 != c.Max {
			lk, err := t.linkAt(pos{k, seq - 1, 0})
			if err != nil {
				return nil, 0, err
			}
			prev = lk.id
		}
		if prev != a.Payload.Prev {
			return &Fork{Seq: seq - 1, A: prev, B: a.ID,
				Reason: fmt.Sprintf("seq %d links to another seq %d", seq, seq-1)}, 0, nil
		}
	}
	if c.present(seq + 1) {
		lk, err := t.linkAt(pos{k, seq + 1, 0})
		if err != nil {
			return nil, 0, err
		}
		if lk.prev != a.ID {
			return &Fork{Seq: seq, A: a.ID, B: lk.id,
				Reason: fmt.Sprintf("seq %d links to another seq %d", seq+1, seq)}, 0, nil
		}
	}
	return nil, 0, nil
}

// place records seq (with id) as present in the chain.
func (t *txn) place(k chainKey, c *chainState, seq uint64, id topics.ID) error {
	c.Gaps = c.gapsWith(seq)
	if seq > c.Max {
		c.Max, c.MaxID = seq, id
	}
	contig := c.contig()
	if contig == c.Contig {
		return nil
	}
	c.Contig = contig
	switch contig {
	case seq:
		c.ContigID = id
	case c.Max:
		c.ContigID = c.MaxID
	default:
		lk, err := t.linkAt(pos{k, contig, 0})
		if err != nil {
			return err
		}
		c.ContigID = lk.id
	}
	return nil
}

// applyState updates tracker and Thing state for a stored entry.
func (t *txn) applyState(a *topics.Announcement, cursor uint64, hash topics.ID, first bool) error {
	p := a.Payload
	if first {
		t.trackers[p.Tracker] = &TrackerState{ID: p.Tracker, Owner: p.Author,
			Node: p.Tracker == topics.DeriveTrackerID(a.AuthorKey, "")}
	}
	if p.Opaque() {
		return nil
	}
	ref := Ref{ID: a.ID, Seq: p.Seq, Cursor: cursor, Hash: hash}
	switch p.Kind {
	case topics.KindTracker, topics.KindNode:
		tr, err := t.tracker(p.Tracker)
		if err != nil {
			return err
		}
		if tr.Info == nil || tr.Info.Seq < p.Seq {
			tr.Info = &ref
			if p.TrackerInfo != nil {
				tr.Name = p.TrackerInfo.Name
			}
		}
	case topics.KindThing:
		if err := t.putRow(prefixThing, p.Tracker, p.Thing.ID, thingRow{version: p.Thing.Version, ref: ref, parents: p.Thing.Parents}); err != nil {
			return err
		}
		if err := t.putDerived(a); err != nil {
			return err
		}
		// A retraction that arrived before its target applies now.
		if r, ok := t.pendingRetract(a.ID); ok {
			t.retracts[a.ID] = topics.ID{}
			return t.retractTarget(r, a)
		}
	case topics.KindRetract:
		return t.applyRetract(a, ref)
	}
	return nil
}

// putRow writes one t or x record (blind) and remembers it for this group.
func (t *txn) putRow(prefix byte, tracker topics.TrackerID, thing string, row thingRow) error {
	v, err := row.ref.encode(row.parents)
	if err != nil {
		return err
	}
	if err := t.b.Set(thingVersionKey(prefix, tracker, thing, row.version, row.ref.Seq), v, nil); err != nil {
		return err
	}
	row.retraction = prefix == prefixRetracted
	k := string(thingPrefix(0, tracker, thing, true))
	t.rows[k] = append(t.rows[k], row)
	return nil
}

func (t *txn) pendingRetract(target topics.ID) (topics.ID, bool) {
	if id, ok := t.retracts[target]; ok {
		return id, !id.IsZero()
	}
	id, ok := t.l.retracts[target]
	return id, ok
}

// applyRetract records a retraction against the version its target belongs
// to, or, when the target is not stored yet, remembers it until it is.
func (t *txn) applyRetract(r *topics.Announcement, ref Ref) error {
	target := r.Payload.Retracts
	tc, err := t.cursorOf(target)
	if err != nil {
		return err
	}
	if tc == 0 {
		t.retracts[target] = r.ID
		return nil
	}
	a, err := t.announcementAt(tc)
	if err != nil {
		return err
	}
	return t.retract(a, r, ref)
}

// retractTarget applies the stored retraction id to its target a.
func (t *txn) retractTarget(id topics.ID, a *topics.Announcement) error {
	rc, err := t.cursorOf(id)
	if err != nil || rc == 0 {
		return err
	}
	r, err := t.announcementAt(rc)
	if err != nil {
		return err
	}
	return t.retract(a, r, Ref{ID: r.ID, Seq: r.Payload.Seq, Cursor: rc})
}

// retract records that r retracts the version of target, if target is a
// Thing announcement by the same author on the same tracker. Otherwise the
// retraction stays in the log with no effect.
func (t *txn) retract(target, r *topics.Announcement, ref Ref) error {
	tp := target.Payload
	if tp.Kind != topics.KindThing || tp.Opaque() || tp.Tracker != r.Payload.Tracker || tp.Author != r.Payload.Author {
		return nil
	}
	return t.putRow(prefixRetracted, tp.Tracker, tp.Thing.ID, thingRow{version: tp.Thing.Version, ref: ref})
}
