package feed

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// view runs fn with the store open for reading.
func (l *Log) view(fn func() error) error {
	l.rw.RLock()
	defer l.rw.RUnlock()
	if l.closed {
		return ErrClosed
	}
	return fn()
}

// get reads a value (a copy), or nil if absent. Call inside view.
func (l *Log) get(key []byte) ([]byte, error) {
	v, closer, err := l.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return slices.Clone(v), nil
}

// scan calls fn for every key with prefix, from start (inclusive, or the
// prefix itself when nil), in key order, until fn returns false. Call inside
// view.
func (l *Log) scan(prefix, start []byte, fn func(k, v []byte) (bool, error)) error {
	if start == nil {
		start = prefix
	}
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		more, err := fn(it.Key(), v)
		if err != nil || !more {
			it.Close()
			return err
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// readAnnouncement loads and decodes the announcement stored at cursor. The
// signature was verified when it was appended and is not checked again.
func readAnnouncement(get func([]byte) ([]byte, error), cursor uint64) (*topics.Announcement, error) {
	ref, env, err := readEnvelope(get, cursor)
	if err != nil {
		return nil, err
	}
	e, err := topics.DecodeAnnouncement(env)
	if err != nil {
		return nil, fmt.Errorf("feed: stored envelope at %d: %w", cursor, err)
	}
	a, err := topics.Check(e, ref.id, "", zeroTime)
	if err != nil {
		return nil, fmt.Errorf("feed: stored envelope at %d: %w", cursor, err)
	}
	return a, nil
}

func readEnvelope(get func([]byte) ([]byte, error), cursor uint64) (entryRef, []byte, error) {
	v, err := get(entryKey(cursor))
	if err != nil {
		return entryRef{}, nil, err
	}
	if v == nil {
		return entryRef{}, nil, fmt.Errorf("%w: cursor %d", ErrNotFound, cursor)
	}
	ref, err := decodeEntryRef(v)
	if err != nil {
		return ref, nil, err
	}
	cv, err := get(ref.pos.key())
	if err != nil {
		return ref, nil, err
	}
	if cv == nil {
		return ref, nil, fmt.Errorf("feed: entry %d: chain record missing", cursor)
	}
	_, env, err := decodeChainValue(cv)
	return ref, env, err
}

// entry builds the Entry of a stored envelope without re-validating it.
func entry(cursor uint64, ref entryRef, env []byte) (view.Entry, error) {
	e, err := topics.DecodeEnvelope(env)
	if err != nil {
		return view.Entry{}, fmt.Errorf("feed: stored envelope at %d: %w", cursor, err)
	}
	author, err := nodeID(ref.pos.chain.author())
	if err != nil {
		return view.Entry{}, err
	}
	return view.Entry{
		Cursor:       cursor,
		ID:           ref.id,
		Topic:        topics.TrackerTopic(ref.pos.chain.tracker()),
		Kind:         ref.kind,
		Author:       author,
		Tracker:      ref.pos.chain.tracker(),
		Seq:          ref.pos.seq,
		Announcement: e.Payload,
		Envelope:     env,
		Void:         ref.voided(),
	}, nil
}

func nodeID(rawKey []byte) (string, error) {
	k, err := crypto.UnmarshalEd25519PublicKey(rawKey)
	if err != nil {
		return "", fmt.Errorf("feed: stored author key: %w", err)
	}
	return topics.NodeID(k)
}

// Entries returns up to limit entries after cursor, in arrival order,
// void ones (Entry.Void) included.
func (l *Log) Entries(after uint64, limit int) ([]view.Entry, error) {
	var out []view.Entry
	last := l.Last() // durable entries only
	err := l.view(func() error {
		return l.scan([]byte{prefixEntry}, entryKey(after+1), func(k, v []byte) (bool, error) {
			cursor := binary.BigEndian.Uint64(k[1:])
			if len(out) >= limit || cursor > last {
				return false, nil
			}
			ref, err := decodeEntryRef(v)
			if err != nil {
				return false, err
			}
			cv, err := l.get(ref.pos.key())
			if err != nil {
				return false, err
			}
			_, env, err := decodeChainValue(cv)
			if err != nil {
				return false, err
			}
			e, err := entry(cursor, ref, env)
			out = append(out, e)
			return err == nil, err
		})
	})
	return out, err
}

// Entry returns the entry stored at cursor.
func (l *Log) Entry(cursor uint64) (view.Entry, error) {
	var e view.Entry
	err := l.view(func() error {
		ref, env, err := readEnvelope(l.get, cursor)
		if err != nil {
			return err
		}
		e, err = entry(cursor, ref, env)
		return err
	})
	return e, err
}

// Announcement returns the decoded announcement stored at cursor.
func (l *Log) Announcement(cursor uint64) (*topics.Announcement, error) {
	var a *topics.Announcement
	err := l.view(func() error {
		var err error
		a, err = readAnnouncement(l.get, cursor)
		return err
	})
	return a, err
}

// Lookup returns the cursor of an announcement ID, or 0 if it is not stored.
func (l *Log) Lookup(id topics.ID) (uint64, error) {
	var c uint64
	err := l.view(func() error {
		v, err := l.get(idKey(id))
		if v != nil {
			c = binary.BigEndian.Uint64(v)
		}
		return err
	})
	return c, err
}

// Has reports whether an announcement ID is stored. It is cheap (a point
// lookup with bloom filters) and safe to call from validators.
func (l *Log) Has(id topics.ID) (bool, error) {
	c, err := l.Lookup(id)
	return c != 0, err
}

// Reader reads the log in arrival order, waiting for new entries at the end.
// A Reader is not safe for concurrent use.
type Reader struct {
	l      *Log
	cursor uint64
	buf    []view.Entry
}

// NewReader returns a reader of the entries after cursor.
func (l *Log) NewReader(after uint64) *Reader { return &Reader{l: l, cursor: after} }

// Next returns the next entry that is not void, blocking until there is
// one, ctx is done or the log closes.
func (r *Reader) Next(ctx context.Context) (view.Entry, error) {
	for {
		for len(r.buf) == 0 {
			if err := r.l.Wait(ctx, r.cursor); err != nil {
				return view.Entry{}, err
			}
			buf, err := r.l.Entries(r.cursor, 256)
			if err != nil {
				return view.Entry{}, err
			}
			r.buf = buf
		}
		e := r.buf[0]
		r.buf = r.buf[1:]
		r.cursor = e.Cursor
		if !e.Void {
			return e, nil
		}
	}
}

// Cursor returns the cursor of the last entry Next returned.
func (r *Reader) Cursor() uint64 { return r.cursor }

// Head is what the log holds of one chain.
type Head struct {
	Tracker topics.TrackerID `json:"tracker"`
	Author  string           `json:"author"` // node ID
	// AuthorKey is the raw Ed25519 key of the author.
	AuthorKey []byte `json:"author_key,omitempty"`
	// Seq and ID: the contiguous head (seqs 1..Seq all present).
	Seq uint64    `json:"seq"`
	ID  topics.ID `json:"id"`
	// Max and MaxID: the highest seq present.
	Max   uint64    `json:"max"`
	MaxID topics.ID `json:"max_id"`
	// Gaps are missing ranges below Max.
	Gaps []Range `json:"gaps,omitempty"`
	// Fork is set when the chain is frozen by a fork.
	Fork *Fork `json:"fork,omitempty"`
}

// Heads returns every chain's head, ordered by tracker then author.
func (l *Log) Heads() ([]Head, error) { return l.heads(nil, nil, math.MaxInt) }

// TrackerHeads returns the heads of one tracker's chains, ordered by author.
func (l *Log) TrackerHeads(t topics.TrackerID) ([]Head, error) {
	return l.heads(t[:], nil, math.MaxInt)
}

// HeadsAfter returns at most limit heads, in the order of Heads (tracker ID
// bytes, then author key bytes), from the first chain after tracker and
// author (a raw key), or from the first chain when author is nil: a page of
// an inventory, read without going over the pages before it.
func (l *Log) HeadsAfter(tracker topics.TrackerID, author []byte, limit int) ([]Head, error) {
	var start []byte
	if author != nil {
		k := makeChainKey(tracker, author)
		start = append(headKey(k), 0) // the first key after it
	}
	return l.heads(nil, start, limit)
}

func (l *Log) heads(tracker, start []byte, limit int) ([]Head, error) {
	var out []Head
	err := l.view(func() error {
		return l.scan(append([]byte{prefixHead}, tracker...), start, func(k, v []byte) (bool, error) {
			var c chainState
			if err := decodeState(v, &c); err != nil {
				return false, err
			}
			ck := chainKey(k[1:])
			author, err := nodeID(ck.author())
			if err != nil {
				return false, err
			}
			out = append(out, Head{
				Tracker: ck.tracker(), Author: author, AuthorKey: slices.Clone(ck.author()),
				Seq: c.Contig, ID: c.ContigID, Max: c.Max, MaxID: c.MaxID, Gaps: c.Gaps, Fork: c.Fork,
			})
			return len(out) < limit, nil
		})
	})
	return out, err
}

// ChainEntry is one stored envelope in chain order.
type ChainEntry struct {
	Seq      uint64
	Variant  byte // 1 for the second envelope of a fork
	ID       topics.ID
	Envelope []byte
}

// Chain returns up to limit envelopes of one chain with seq ≥ from, in
// chain order (fork evidence after the entry it conflicts with).
func (l *Log) Chain(tracker topics.TrackerID, authorKey []byte, from uint64, limit int) ([]ChainEntry, error) {
	k := makeChainKey(tracker, authorKey)
	prefix := append([]byte{prefixChain}, k[:]...)
	var out []ChainEntry
	err := l.view(func() error {
		return l.scan(prefix, chainSeqKey(k, from), func(key, v []byte) (bool, error) {
			if len(out) >= limit {
				return false, nil
			}
			p, err := parsePosKey(key)
			if err != nil {
				return false, err
			}
			lk, env, err := decodeChainValue(v)
			if err != nil {
				return false, err
			}
			out = append(out, ChainEntry{Seq: p.seq, Variant: p.variant, ID: lk.id, Envelope: slices.Clone(env)})
			return true, nil
		})
	})
	return out, err
}

// scanThingRows reads the t and x records of one Thing.
func scanThingRows(l *Log, tracker topics.TrackerID, thing string) ([]thingRow, error) {
	var rows []thingRow
	for _, prefix := range []byte{prefixThing, prefixRetracted} {
		err := l.scan(thingPrefix(prefix, tracker, thing, true), nil, func(k, v []byte) (bool, error) {
			_, version, seq, err := parseThingVersionKey(k)
			if err != nil {
				return false, err
			}
			ref, parents, err := decodeRef(v, seq)
			rows = append(rows, thingRow{retraction: prefix == prefixRetracted, version: version, ref: ref, parents: parents})
			return err == nil, err
		})
		if err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// ScanChain calls fn for the envelopes of one chain with seq ≥ from, in
// chain order, until fn returns false. The envelope is only valid during
// the call (no copy is made): the cheapest way to read a chain.
func (l *Log) ScanChain(tracker topics.TrackerID, authorKey []byte, from uint64, fn func(seq uint64, variant byte, envelope []byte) bool) error {
	k := makeChainKey(tracker, authorKey)
	prefix := append([]byte{prefixChain}, k[:]...)
	return l.view(func() error {
		return l.scan(prefix, chainSeqKey(k, from), func(key, v []byte) (bool, error) {
			if len(key) != 1+len(k)+9 || len(v) < 64 {
				return false, fmt.Errorf("feed: bad chain record")
			}
			seq := binary.BigEndian.Uint64(key[1+len(k):])
			return fn(seq, key[len(key)-1], v[64:]), nil
		})
	})
}

// Thing returns the state of one Thing, or ErrNotFound.
func (l *Log) Thing(tracker topics.TrackerID, id string) (*ThingState, error) {
	var s *ThingState
	err := l.view(func() error {
		rows, err := scanThingRows(l, tracker, id)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return fmt.Errorf("%w: thing %q in tracker %s", ErrNotFound, id, tracker)
		}
		s = buildThing(tracker, id, rows)
		return nil
	})
	return s, err
}

// Things returns the state of every Thing of a tracker, ordered by the
// length of their ids, then by id.
func (l *Log) Things(tracker topics.TrackerID) ([]*ThingState, error) {
	return l.ThingsAfter(tracker[:], nil, math.MaxInt)
}

// ThingKey names a Thing: a page of Things continues after one.
type ThingKey struct {
	Tracker topics.TrackerID
	Thing   string
}

// ThingsAfter returns the state of up to limit Things, in key order (by
// tracker, then as Things orders them): those of the trackers whose ID
// starts with trackerPrefix (all when empty), after the Thing named by after
// (from the start when nil).
func (l *Log) ThingsAfter(trackerPrefix []byte, after *ThingKey, limit int) ([]*ThingState, error) {
	prefix := append([]byte{prefixThing}, trackerPrefix...)
	start := prefix
	if after != nil {
		start = prefixEnd(thingPrefix(prefixThing, after.Tracker, after.Thing, true))
		if bytes.Compare(start, prefix) < 0 {
			start = prefix
		}
	}
	var out []*ThingState
	err := l.view(func() error {
		it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.SeekGE(start); ok && len(out) < limit; {
			k := it.Key()
			if len(k) < 1+16 {
				return fmt.Errorf("feed: bad thing key %x", k)
			}
			tracker := topics.TrackerID(k[1:17])
			thing, _, _, err := parseThingVersionKey(k)
			if err != nil {
				return err
			}
			rows, err := scanThingRows(l, tracker, thing)
			if err != nil {
				return err
			}
			out = append(out, buildThing(tracker, thing, rows))
			ok = it.SeekGE(prefixEnd(thingPrefix(prefixThing, tracker, thing, true)))
		}
		return it.Error()
	})
	return out, err
}

// Tracker returns the state of one tracker, or ErrNotFound.
func (l *Log) Tracker(id topics.TrackerID) (*TrackerState, error) {
	s := new(TrackerState)
	err := l.view(func() error {
		v, err := l.get(trackerKey(id))
		if err != nil {
			return err
		}
		if v == nil {
			return fmt.Errorf("%w: tracker %s", ErrNotFound, id)
		}
		return decodeState(v, s)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Trackers returns every tracker the log knows, ordered by ID.
func (l *Log) Trackers() ([]TrackerState, error) { return l.TrackersAfter(nil, nil, math.MaxInt) }

// TrackersAfter returns up to limit trackers, ordered by ID: those whose ID
// starts with prefix (all when empty; topics.OwnerPrefix selects one
// owner's), after the tracker after (from the first when nil).
func (l *Log) TrackersAfter(prefix []byte, after *topics.TrackerID, limit int) ([]TrackerState, error) {
	keys := append([]byte{prefixTracker}, prefix...)
	var start []byte
	if after != nil {
		start = prefixEnd(trackerKey(*after))
		if bytes.Compare(start, keys) < 0 {
			start = nil
		}
	}
	var out []TrackerState
	err := l.view(func() error {
		return l.scan(keys, start, func(_, v []byte) (bool, error) {
			if len(out) >= limit {
				return false, nil
			}
			var s TrackerState
			err := decodeState(v, &s)
			out = append(out, s)
			return err == nil, err
		})
	})
	return out, err
}
