package feed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/thingtracker/ttn/topics"
)

// The record index: of an author's trust records and flags, the latest per
// subject or target (topics.Payload.RecordKey) stands (PROTOCOL.md, 4.3).
// The index keeps the standing one for every (author, record key):
//
//	p author(32) recordKey → seq(8) cursor(8)
//
// A stored record replaces the indexed one when its seq is higher. An equal
// seq means a fork (the author signed two records for one place in its
// chain, and both are stored, one as evidence): of two trust records the
// more cautious stands (distrusted, then none, marginal, trusted, verified),
// whichever arrived first, so that a forking author cannot raise its word by
// the order its envelopes travel in; of two flags the one stored first
// stays. Fork evidence is indexed like any entry: the author signed it.

// recordRef is the value of a 'p' key: where the standing record is.
type recordRef struct {
	seq, cursor uint64
}

func (r recordRef) encode() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16), r.seq)
	return binary.BigEndian.AppendUint64(b, r.cursor)
}

func decodeRecordRef(v []byte) (recordRef, error) {
	if len(v) != 16 {
		return recordRef{}, fmt.Errorf("feed: bad record index entry (%d bytes)", len(v))
	}
	return recordRef{seq: binary.BigEndian.Uint64(v), cursor: binary.BigEndian.Uint64(v[8:])}, nil
}

func recordIndexKey(author []byte, key string) []byte {
	b := make([]byte, 0, 1+32+len(key))
	b = append(b, prefixRecord)
	b = append(b, author...)
	return append(b, key...)
}

// keyRecordsIndexed holds the cursor through which every entry is in the
// record index. The writer keeps it equal to the last cursor; a log written
// by a version without the index lacks it (or, if such a version wrote
// after this one, holds less than the last cursor), and Open indexes the
// entries after it.
var keyRecordsIndexed = []byte{prefixMeta, 'r', 'e', 'c', 'o', 'r', 'd', 's'}

// caution orders trust levels for two records of one seq: the higher
// stands.
func caution(l topics.TrustLevel) int {
	switch l {
	case topics.TrustDistrusted:
		return 4
	case topics.TrustNone:
		return 3
	case topics.TrustMarginal:
		return 2
	case topics.TrustTrusted:
		return 1
	}
	return 0 // verified
}

// supersedes reports whether the record p stands instead of old, the one
// indexed under the same (author, record key). load reads old's payload; it
// is called only when the seqs are equal (a fork).
func supersedes(p *topics.Payload, old recordRef, load func() (*topics.Payload, error)) (bool, error) {
	switch {
	case p.Seq != old.seq:
		return p.Seq > old.seq, nil
	case p.Kind != topics.KindTrust:
		return false, nil // flags: the first stored stays
	}
	op, err := load()
	if err != nil {
		return false, err
	}
	if op.Trust == nil {
		return true, nil // not a trust record after all: cannot happen
	}
	return caution(p.Trust.Level) > caution(op.Trust.Level), nil
}

// record returns the standing record under index key k as applied,
// including this group; ok is false when there is none.
func (t *txn) record(k []byte) (ref recordRef, ok bool, err error) {
	if r, ok := t.records[string(k)]; ok {
		return r, r.cursor != 0, nil // a zero ref: dropped by this group
	}
	v, err := t.get(k)
	if err != nil || v == nil {
		return recordRef{}, false, err
	}
	ref, err = decodeRecordRef(v)
	return ref, err == nil, err
}

// indexRecord indexes a, stored at cursor, if it is a trust record or a
// flag that stands instead of the one indexed.
func (t *txn) indexRecord(a *topics.Announcement, cursor uint64) error {
	rk, ok := a.Payload.RecordKey()
	if !ok {
		return nil
	}
	k := recordIndexKey(a.AuthorKey, rk)
	old, ok, err := t.record(k)
	if err != nil {
		return err
	}
	if ok {
		stands, err := supersedes(a.Payload, old, func() (*topics.Payload, error) {
			oa, err := t.announcementAt(old.cursor)
			if err != nil {
				return nil, err
			}
			return oa.Payload, nil
		})
		if err != nil || !stands {
			return err
		}
	}
	t.records[string(k)] = recordRef{seq: a.Payload.Seq, cursor: cursor}
	return nil
}

// writeRecords puts the group's index changes and how far the index goes
// into the batch.
func (t *txn) writeRecords() error {
	errs := make([]error, 0, len(t.records)+1)
	for k, r := range t.records {
		if r.cursor == 0 {
			errs = append(errs, t.b.Delete([]byte(k), nil))
			continue
		}
		errs = append(errs, t.b.Set([]byte(k), r.encode(), nil))
	}
	errs = append(errs, t.b.Set(keyRecordsIndexed, binary.BigEndian.AppendUint64(nil, t.last), nil))
	return errors.Join(errs...)
}

// currentRecord returns the author's standing trust record or flag with d's
// subject or target if its body is d's, else nil.
func (t *txn) currentRecord(d *draft, author []byte) (*Ref, error) {
	rk, ok := d.payload(1, topics.ID{}, zeroTime).RecordKey()
	if !ok {
		return nil, errBadDraftT
	}
	ref, ok, err := t.record(recordIndexKey(author, rk))
	if err != nil || !ok {
		return nil, err
	}
	a, err := t.announcementAt(ref.cursor)
	if err != nil {
		return nil, err
	}
	h, err := bodyHash(a.Payload)
	if err != nil || h != d.hash {
		return nil, err
	}
	return &Ref{ID: a.ID, Seq: ref.seq, Cursor: ref.cursor, Hash: h}, nil
}

// indexRecords brings the record index up to the last cursor at Open:
// the entries after keyRecordsIndexed (all of a log written before the
// index) are read once, trust records and flags among them indexed, in
// commits of at most indexChunk records.
func (l *Log) indexRecords() error {
	v, closer, err := l.db.Get(keyRecordsIndexed)
	var from uint64
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if l.last == 0 {
			return nil // a new log: its first commit writes the marker
		}
	case err != nil:
		return fmt.Errorf("feed: read record index marker: %w", err)
	default:
		if len(v) == 8 {
			from = binary.BigEndian.Uint64(v)
		}
		closer.Close()
		if from >= l.last {
			return nil
		}
	}
	const indexChunk = 4096
	t := l.newTxn()
	defer func() { t.discard() }()
	scanned, indexed := 0, 0
	commit := func(through uint64) error {
		t.last = through
		if err := t.writeRecords(); err != nil {
			return err
		}
		if err := l.db.Apply(t.b, pebble.Sync); err != nil {
			return fmt.Errorf("feed: write record index: %w", err)
		}
		t.discard()
		t = l.newTxn()
		return nil
	}
	err = l.scan([]byte{prefixEntry}, entryKey(from+1), func(k, v []byte) (bool, error) {
		cursor := binary.BigEndian.Uint64(k[1:])
		if cursor > l.last {
			return false, nil
		}
		scanned++
		ref, err := decodeEntryRef(v)
		if err != nil || (ref.kind != topics.KindTrust && ref.kind != topics.KindFlag) {
			return err == nil, err
		}
		a, err := readAnnouncement(t.get, cursor)
		if err != nil {
			// Stored by a version that read the payload rules otherwise:
			// one record less is better than a log that does not open.
			l.cfg.Logger.Warn("stored record unreadable; not indexed", "cursor", cursor, "err", err)
			return true, nil
		}
		if err := t.indexRecord(a, cursor); err != nil {
			return false, err
		}
		indexed++
		if len(t.records) >= indexChunk {
			return true, commit(cursor)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if err := commit(l.last); err != nil {
		return err
	}
	if scanned == 0 {
		return nil
	}
	l.cfg.Logger.Info("indexed trust records and flags", "entries", scanned, "records", indexed, "after", from)
	return nil
}

// Records calls fn with every standing trust record and flag, of every
// author, in key order (author key, then record key), until fn returns an
// error, which Records returns. Withdrawals (level none, withdraw) stand
// like any record. fn is called without any lock held and may call the log.
func (l *Log) Records(ctx context.Context, fn func(a *topics.Announcement) error) error {
	const page = 256 // records read under one view
	prefix := []byte{prefixRecord}
	var start []byte // the first key of the page; nil for the first
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var anns []*topics.Announcement
		var next []byte
		err := l.view(func() error {
			return l.scan(prefix, start, func(k, v []byte) (bool, error) {
				if len(anns) == page {
					next = slices.Clone(k)
					return false, nil
				}
				ref, err := decodeRecordRef(v)
				if err != nil {
					return false, err
				}
				a, err := readAnnouncement(l.get, ref.cursor)
				anns = append(anns, a)
				return err == nil, err
			})
		})
		if err != nil {
			return err
		}
		for _, a := range anns {
			if err := fn(a); err != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		start = next
	}
}

// Record returns the standing trust record or flag of author (its raw
// Ed25519 key) under key (what topics.Payload.RecordKey returns:
// "trust:NODE_ID" or "flag:" and the target's key), or ErrNotFound.
func (l *Log) Record(author []byte, key string) (*topics.Announcement, error) {
	if len(author) != 32 {
		return nil, fmt.Errorf("%w: record %q of a %d-byte key", ErrNotFound, key, len(author))
	}
	var a *topics.Announcement
	err := l.view(func() error {
		v, err := l.get(recordIndexKey(author, key))
		if err != nil {
			return err
		}
		if v == nil {
			return fmt.Errorf("%w: record %q", ErrNotFound, key)
		}
		ref, err := decodeRecordRef(v)
		if err != nil {
			return err
		}
		a, err = readAnnouncement(l.get, ref.cursor)
		return err
	})
	return a, err
}
