package feed

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/topics"
)

// Key rotation (DESIGN "Key rotation and recovery"). An author's chains and
// trackers are named by its inception key, the key its node ID embeds; an
// author may rotate to a key it committed to, by a rotate record signed by
// that key. The log keeps each rotated or committed author's key state: the
// keys in order, the rotations with the heads each vouches for, and the
// commitment in force. An entry is placed when its signer is the author's
// current key, or an earlier key and the entry is at or below the heads the
// rotation that replaced that key names; past them it is void: not stored,
// and dropped from the views if held (its envelope kept as evidence). A
// signer the log cannot place (it may lack the rotate record) is Unplaced.

// keyState is what the log knows of an author's keys, stored under 'y'.
type keyState struct {
	// Keys are the author's signing keys, raw, in order: Keys[0] is the
	// inception key, Keys[i] the key Rotations[i-1] made current.
	Keys      [][]byte   `json:"keys"`
	Rotations []rotation `json:"rotations,omitempty"`
	// Next is the commitment in force: before any rotation, that of the
	// lowest-seq node record carrying one (NextSeq); after, the last
	// rotation's.
	Next    string `json:"next,omitempty"`
	NextSeq uint64 `json:"next_seq,omitempty"`
	// Retired: the last rotation committed to no next key; nothing signed
	// after it is placed.
	Retired bool   `json:"retired,omitempty"`
	Void    uint64 `json:"void,omitempty"` // held entries voided
}

// rotation is one applied rotate record.
type rotation struct {
	Seq    uint64              `json:"seq"` // on the node tracker
	ID     topics.ID           `json:"id"`
	Reason string              `json:"reason"`
	Heads  []topics.RotateHead `json:"heads"`
}

func (s *keyState) clone() *keyState {
	d := *s
	d.Keys = slices.Clone(s.Keys)
	d.Rotations = slices.Clone(s.Rotations)
	return &d
}

// KeyState is an author's key state as the log holds it.
type KeyState struct {
	Current    []byte // the current signing key, raw
	Rotations  int
	Commitment string // the commitment in force, "" when none is known
	Retired    bool
	Void       uint64 // entries voided by its rotations
}

func keyStateKey(author []byte) []byte { return append([]byte{prefixKeys}, author...) }

// KeyState returns an author's key state (by its inception key, raw). An
// author the log knows nothing of has its inception key as current key.
func (l *Log) KeyState(author []byte) KeyState {
	l.keysMu.RLock()
	s := l.keys[[32]byte(author)]
	l.keysMu.RUnlock()
	if s == nil {
		return KeyState{Current: author}
	}
	return KeyState{Current: s.Keys[len(s.Keys)-1], Rotations: len(s.Rotations), Commitment: s.Next,
		Retired: s.Retired, Void: s.Void}
}

// AuthorKey returns the inception key (raw) of the author a signing key
// signs for: the author that rotated to it, or the key's own.
func (l *Log) AuthorKey(signer []byte) []byte {
	l.keysMu.RLock()
	defer l.keysMu.RUnlock()
	if inception, ok := l.current[[32]byte(signer)]; ok {
		return inception[:]
	}
	return signer
}

// authorOf returns the inception key and node ID of the author whose
// current key is raw: raw itself for a key that never rotated in.
func (l *Log) authorOf(raw []byte) ([]byte, string, error) {
	raw = l.AuthorKey(raw)
	id, err := nodeID(raw)
	return raw, id, err
}

// keyStatesKept marks a log that keeps key states (one written before
// rotation existed has its commitments recomputed once, at Open).
var keyStatesKept = []byte{prefixMeta, 'k', 'e', 'y', 's'}

// readKeyStates loads every author's key state at Open, first computing
// the commitments in force of a log written before key states were kept.
func (l *Log) readKeyStates() error {
	l.keys = make(map[[32]byte]*keyState)
	l.current = make(map[[32]byte][32]byte)
	kept, err := l.get(keyStatesKept)
	if err != nil {
		return err
	}
	if kept == nil {
		if err := l.recomputeCommitments(); err != nil {
			return fmt.Errorf("feed: recomputing commitments: %w", err)
		}
	}
	l.marked = kept != nil
	return l.scan([]byte{prefixKeys}, nil, func(k, v []byte) (bool, error) {
		s := new(keyState)
		if len(k) != 33 || decodeState(v, s) != nil || len(s.Keys) == 0 {
			return false, fmt.Errorf("feed: bad key state record")
		}
		l.setKeyState([32]byte(k[1:]), s)
		return true, nil
	})
}

// recomputeCommitments writes the key state of every author whose node
// records carry a commitment: the lowest-seq one is in force.
func (l *Log) recomputeCommitments() error {
	b := l.db.NewBatch()
	defer b.Close()
	var errs []error
	err := l.scan([]byte{prefixHead}, nil, func(k, _ []byte) (bool, error) {
		author := bytes.Clone(k[1+16:])
		if topics.TrackerID(k[1:1+16]) != topics.DeriveTrackerID(author, "") {
			return true, nil
		}
		ck := makeChainKey(topics.TrackerID(k[1:1+16]), author)
		start := chainSeqKey(ck, 1)
		return true, l.scan(start[:1+len(ck)], start, func(_, v []byte) (bool, error) {
			_, p, err := chainPayload(v)
			if err != nil || p.Opaque() || p.Kind != topics.KindNode || p.NodeInfo.Next == "" {
				return true, nil // not a committing node record (or one this version reads otherwise)
			}
			st, err := encodeState(&keyState{Keys: [][]byte{author}, Next: p.NodeInfo.Next, NextSeq: p.Seq})
			errs = append(errs, err, b.Set(keyStateKey(author), st, nil))
			return false, nil
		})
	})
	if err := errors.Join(append(errs, err)...); err != nil || b.Empty() {
		return err // nothing to write: the next group marks the log (writeMarks)
	}
	return l.db.Apply(b, pebble.Sync)
}

// setKeyState installs an applied key state. The caller holds no lock.
func (l *Log) setKeyState(author [32]byte, s *keyState) {
	l.keysMu.Lock()
	defer l.keysMu.Unlock()
	if old := l.keys[author]; old != nil {
		delete(l.current, [32]byte(old.Keys[len(old.Keys)-1]))
	}
	l.keys[author] = s
	if len(s.Keys) > 1 {
		l.current[[32]byte(s.Keys[len(s.Keys)-1])] = author
	}
}

// keyState returns the author's key state in the group, nil when the log
// has none.
func (t *txn) keyState(author []byte) *keyState {
	if s, ok := t.keys[[32]byte(author)]; ok {
		return s
	}
	t.l.keysMu.RLock()
	s := t.l.keys[[32]byte(author)]
	t.l.keysMu.RUnlock()
	return s
}

// changeKeyState returns a copy of the author's key state for the group to
// change (a new one when there is none).
func (t *txn) changeKeyState(author []byte) *keyState {
	s := t.keyState(author)
	if s == nil {
		s = &keyState{Keys: [][]byte{bytes.Clone(author)}}
	} else if _, mine := t.keys[[32]byte(author)]; !mine {
		s = s.clone()
	}
	t.keys[[32]byte(author)] = s
	return s
}

// verdict is what an author's key state says of an entry.
type verdict int

const (
	placed        verdict = iota
	void                  // signed by a replaced key past the vouched-for heads
	unplaced              // the signer is none of the author's known keys
	refusedRotate         // a rotate to a key that is not the one committed to
)

// judge places a's signer in its author's key state.
func (t *txn) judge(a *topics.Announcement) verdict {
	s := t.keyState(a.AuthorKey)
	signer := a.Env.RawKey
	if a.Payload.Kind == topics.KindRotate && !a.Payload.Opaque() {
		switch {
		case s == nil || s.Next == "" && !s.Retired:
			return unplaced // the commitment may be in a node record not held
		case len(s.Rotations) == 0 && !t.contiguousTo(a.AuthorKey, s.NextSeq):
			// A node record below the one committing may carry another
			// commitment (the first one is in force): fetch them first.
			return unplaced
		case s.Retired || topics.Commitment(signer) != s.Next:
			return refusedRotate
		}
		return placed
	}
	if s == nil {
		if a.Rotated() {
			return unplaced
		}
		return placed
	}
	i := slices.IndexFunc(s.Keys, func(k []byte) bool { return bytes.Equal(k, signer) })
	switch {
	case i < 0:
		return unplaced
	case i == len(s.Keys)-1:
		if s.Retired {
			return void
		}
		return placed
	}
	h := rotationHead(s.Rotations[i].Heads, a.Payload.Tracker)
	if a.Payload.Seq < h.Seq || a.Payload.Seq == h.Seq && a.ID == h.ID {
		return placed
	}
	return void
}

// contiguousTo reports whether the log holds the author's node tracker
// without a gap or a fork up to seq.
func (t *txn) contiguousTo(author []byte, seq uint64) bool {
	c, err := t.chain(makeChainKey(topics.DeriveTrackerID(author, ""), author))
	return err == nil && c.Contig >= seq && (c.Fork == nil || c.Fork.Seq > seq)
}

func rotationHead(heads []topics.RotateHead, t topics.TrackerID) topics.RotateHead {
	for _, h := range heads {
		if h.Tracker == t {
			return h
		}
	}
	return topics.RotateHead{Tracker: t}
}

// noteCommitment keeps the commitment of a node record: before any
// rotation, the lowest-seq node record carrying one is in force.
func (t *txn) noteCommitment(a *topics.Announcement) {
	p := a.Payload
	if p.Opaque() || p.Kind != topics.KindNode || p.NodeInfo.Next == "" || a.Rotated() {
		return
	}
	if s := t.keyState(a.AuthorKey); s != nil && (len(s.Rotations) > 0 || s.NextSeq != 0 && s.NextSeq <= p.Seq) {
		return
	}
	s := t.changeKeyState(a.AuthorKey)
	s.Next, s.NextSeq = p.NodeInfo.Next, p.Seq
}

// rotate applies a placed rotate record: the signer becomes the author's
// current key, the record's next commitment the one in force, and the
// entries the log holds past the heads it names are voided.
func (t *txn) rotate(a *topics.Announcement) error {
	r := a.Payload.Rotate
	s := t.changeKeyState(a.AuthorKey)
	s.Keys = append(s.Keys, bytes.Clone(a.Env.RawKey))
	s.Rotations = append(s.Rotations, rotation{Seq: a.Payload.Seq, ID: a.ID, Reason: r.Reason, Heads: r.Heads})
	s.Next, s.Retired = r.Next, r.Next == ""
	t.l.cfg.Logger.Warn("key rotated", "author", a.Payload.Author, "reason", r.Reason, "retired", s.Retired)
	// Every chain of the author: those it names, and those it does not
	// (nothing on them is vouched for).
	var chains []chainKey
	err := t.l.scan([]byte{prefixHead}, nil, func(k, _ []byte) (bool, error) {
		if bytes.Equal(k[1+16:], a.AuthorKey) {
			chains = append(chains, chainKey(k[1:]))
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for k := range t.chains {
		if bytes.Equal(k.author(), a.AuthorKey) && !slices.Contains(chains, k) {
			chains = append(chains, k)
		}
	}
	for _, k := range chains {
		n, err := t.voidPast(k, rotationHead(r.Heads, k.tracker()))
		if err != nil {
			return err
		}
		s.Void += n
	}
	return nil
}

// voidPast voids the entries of chain k past head, and at the head's seq
// those that are not the head: their envelopes move to 'v' keys
// (evidence), their arrival entries are marked void, and the Thing rows and
// standing records they made are dropped. The head, if it was a fork's
// second envelope, takes the chain's place at its seq. The chain's state
// then ends at the head (or the last entry held below it), unfrozen if
// its fork involved a voided entry.
func (t *txn) voidPast(k chainKey, head topics.RotateHead) (uint64, error) {
	c, err := t.chain(k)
	if err != nil || c.Max < max(head.Seq, 1) {
		return 0, err
	}
	// Every envelope held from the head's seq on: stored, and this group's.
	type held struct {
		p   pos
		key []byte
		val []byte
	}
	var hs []held
	start := chainSeqKey(k, max(head.Seq, 1))
	err = t.l.scan(start[:1+len(k)], start, func(key, v []byte) (bool, error) {
		p, err := parsePosKey(key)
		hs = append(hs, held{p, bytes.Clone(key), bytes.Clone(v)})
		return err == nil, err
	})
	if err != nil {
		return 0, err
	}
	for p, lk := range t.links {
		if p.chain == k && p.seq >= max(head.Seq, 1) && !slices.ContainsFunc(hs, func(h held) bool { return h.p == p }) {
			hs = append(hs, held{p, p.key(), chainValue(t.anns[t.ids[lk.id]])})
		}
	}
	var n uint64
	voided := make(map[topics.ID]bool)
	var kept *held // the head, when held
	for i, h := range hs {
		lk, env, err := decodeChainValue(h.val)
		if err != nil {
			return n, err
		}
		if h.p.seq == head.Seq && lk.id == head.ID {
			kept = &hs[i]
			continue
		}
		cursor, err := t.cursorOf(lk.id)
		if err != nil || cursor == 0 {
			return n, errors.Join(err, fmt.Errorf("feed: chain entry %s has no cursor", lk.id))
		}
		a, err := t.announcementAt(cursor)
		if err != nil {
			return n, err
		}
		vp := h.p
		vp.variant |= voidBit
		errs := []error{t.b.Delete(h.key, nil), t.b.Set(vp.key(), h.val, nil),
			t.b.Set(entryKey(cursor), entryRef{id: lk.id, pos: vp, kind: a.Payload.Kind}.encode(), nil),
			t.dropState(a)}
		if err := errors.Join(errs...); err != nil {
			return n, err
		}
		delete(t.links, h.p)
		voided[lk.id] = true
		c.Bytes -= min(c.Bytes, uint64(len(env)))
		n++
	}
	if kept != nil && kept.p.variant != 0 {
		if err := t.promote(kept.p, kept.key, kept.val); err != nil {
			return n, err
		}
	}
	// The chain ends at the head, or at the last entry held below it.
	c.Gaps = slices.DeleteFunc(c.Gaps, func(g Range) bool { return g.From >= head.Seq })
	for i := range c.Gaps {
		c.Gaps[i].To = min(c.Gaps[i].To, head.Seq-1)
	}
	c.Max, c.MaxID = head.Seq, head.ID
	switch {
	case head.Seq == 0: // nothing vouched for on this tracker
		c.Max, c.MaxID, c.Gaps = 0, topics.ID{}, nil
	case kept == nil:
		c.Max, c.MaxID = head.Seq-1, topics.ID{}
		if g := len(c.Gaps) - 1; g >= 0 && c.Gaps[g].To == c.Max {
			c.Max = c.Gaps[g].From - 1
			c.Gaps = c.Gaps[:g]
		}
	}
	if c.Fork != nil && (voided[c.Fork.A] || voided[c.Fork.B]) {
		c.Fork = nil
	}
	if err := t.reid(k, c); err != nil {
		return n, err
	}
	t.voided += n
	return n, t.reinfo(k, head.Seq)
}

// promote moves the envelope at p, a fork's second, to its seq's first
// place, whose envelope was voided, and applies it to the Thing and
// tracker state as a stored entry.
func (t *txn) promote(p pos, key, val []byte) error {
	lk, _, err := decodeChainValue(val)
	if err != nil {
		return err
	}
	cursor, err := t.cursorOf(lk.id)
	if err != nil {
		return err
	}
	a, err := t.announcementAt(cursor)
	if err != nil {
		return err
	}
	first := pos{p.chain, p.seq, 0}
	delete(t.links, p)
	t.links[first] = lk
	if err := errors.Join(t.b.Delete(key, nil), t.b.Set(first.key(), val, nil),
		t.b.Set(entryKey(cursor), entryRef{id: lk.id, pos: first, kind: a.Payload.Kind}.encode(), nil)); err != nil {
		return err
	}
	// Fork evidence made no state: the entry in its place does.
	return t.applyState(a, cursor, topics.ID{}, false)
}

// reid sets the chain state's contiguous head and IDs after its Max and
// Gaps changed.
func (t *txn) reid(k chainKey, c *chainState) error {
	if c.Max > 0 && c.MaxID.IsZero() {
		lk, err := t.linkAt(pos{k, c.Max, 0})
		if err != nil {
			return err
		}
		c.MaxID = lk.id
	}
	c.Contig = c.contig()
	switch {
	case c.Contig == 0:
		c.ContigID = topics.ID{}
	case c.Contig == c.Max:
		c.ContigID = c.MaxID
	default:
		lk, err := t.linkAt(pos{k, c.Contig, 0})
		if err != nil {
			return err
		}
		c.ContigID = lk.id
	}
	return nil
}

// reinfo points the tracker's latest tracker or node record back at one
// at or below seq when a void one was it.
func (t *txn) reinfo(k chainKey, seq uint64) error {
	tr, err := t.tracker(k.tracker())
	if err != nil || tr == nil || tr.Info == nil || tr.Info.Seq <= seq {
		return err
	}
	tr.Info = nil
	start := chainSeqKey(k, 1)
	return t.l.scan(start[:1+len(k)], start, func(key, v []byte) (bool, error) {
		p, err := parsePosKey(key)
		if err != nil || p.seq > seq {
			return false, err
		}
		lk, pl, err := chainPayload(v)
		if err != nil || pl.Opaque() || pl.Kind != topics.KindTracker && pl.Kind != topics.KindNode || p.variant != 0 {
			return true, nil // not a tracker or node record (or one this version reads otherwise)
		}
		cursor, err := t.cursorOf(lk.id)
		if err != nil {
			return false, err
		}
		h, err := bodyHash(pl)
		tr.Info = &Ref{ID: lk.id, Seq: p.seq, Cursor: cursor, Hash: h}
		if pl.TrackerInfo != nil {
			tr.Name = pl.TrackerInfo.Name
		}
		return true, err
	})
}

// dropState takes a voided entry out of the Thing views and the standing
// records.
func (t *txn) dropState(a *topics.Announcement) error {
	p := a.Payload
	if p.Opaque() {
		return nil
	}
	if p.Kind == topics.KindThing {
		k := string(thingPrefix(0, p.Tracker, p.Thing.ID, true))
		t.rows[k] = slices.DeleteFunc(t.rows[k], func(r thingRow) bool { return r.ref.ID == a.ID })
		return errors.Join(t.b.Delete(thingVersionKey(prefixThing, p.Tracker, p.Thing.ID, p.Thing.Version, p.Seq), nil), t.dropDerived(a))
	}
	rk, ok := p.RecordKey()
	if !ok {
		return nil
	}
	// The standing record, if it is this one, stands no more (an earlier
	// one of the author does not stand again: the author may publish it).
	k := recordIndexKey(a.AuthorKey, rk)
	ref, ok, err := t.record(k)
	if err != nil || !ok || ref.seq != p.Seq {
		return err
	}
	t.records[string(k)] = recordRef{}
	return nil
}

// chainPayload decodes a chain value's link and payload (its signature was
// checked when it was stored).
func chainPayload(v []byte) (link, *topics.Payload, error) {
	lk, env, err := decodeChainValue(v)
	if err != nil {
		return lk, nil, err
	}
	e, err := topics.DecodeEnvelope(env)
	if err != nil {
		return lk, nil, err
	}
	p, err := topics.ParsePayload(e.Payload)
	return lk, p, err
}

// voidBit marks a void entry's position: its envelope is under 'v'.
const voidBit = 0x80

// writeMarks marks, in the group's batch, a log that does not say yet
// that it keeps key states and the ancestry index (a new log, or one
// whose Open computed them).
func (t *txn) writeMarks() error {
	if t.l.marked {
		return nil
	}
	return errors.Join(t.b.Set(keyStatesKept, []byte{1}, nil), t.b.Set(ancestryIndexed, []byte{1}, nil))
}

// writeKeyStates writes the group's key states into its batch.
func (t *txn) writeKeyStates() error {
	var errs []error
	for author, s := range t.keys {
		b, err := encodeState(s)
		errs = append(errs, err, t.b.Set(keyStateKey(author[:]), b, nil))
	}
	return errors.Join(errs...)
}

// voided reports whether an 'e' record is of a void entry.
func (r entryRef) voided() bool { return r.pos.variant&voidBit != 0 }

// Own heads: the last entry this log's own publishes made on each tracker,
// under 'm' "own" tracker(16) → seq(8) id(32). A rotation vouches for them:
// what a thief signed with the same key past them is not the owner's.
func ownHeadKey(t topics.TrackerID) []byte {
	return append([]byte{prefixMeta, 'o', 'w', 'n'}, t[:]...)
}

func ownHead(a *topics.Announcement) []byte {
	return append(binary.BigEndian.AppendUint64(nil, a.Payload.Seq), a.ID[:]...)
}

// OwnHeads returns, for each tracker the author (its inception key, raw)
// has a chain on, the head a rotation of this log's node vouches for: the
// last entry the log published itself. A log that published nothing itself
// (a data dir recovered from peers, or written by a version that did not
// keep its own heads) vouches for each chain's contiguous head; a log that
// did vouches for nothing on the trackers it never published on (a thief
// may have made them).
func (l *Log) OwnHeads(author []byte) ([]topics.RotateHead, error) {
	var out, fallback []topics.RotateHead
	err := l.view(func() error {
		return l.scan([]byte{prefixHead}, nil, func(k, v []byte) (bool, error) {
			if !bytes.Equal(k[1+16:], author) {
				return true, nil
			}
			t := topics.TrackerID(k[1 : 1+16])
			h := topics.RotateHead{Tracker: t}
			own, err := l.get(ownHeadKey(t))
			if err != nil {
				return false, err
			}
			if len(own) == 8+32 {
				h.Seq, h.ID = binary.BigEndian.Uint64(own), topics.ID(own[8:])
				out = append(out, h)
				return len(out) < topics.MaxRotateHeads, nil
			}
			var c chainState
			if err := decodeState(v, &c); err != nil {
				return false, err
			}
			if h.Seq, h.ID = c.Contig, c.ContigID; h.Seq > 0 && len(fallback) < topics.MaxRotateHeads {
				fallback = append(fallback, h)
			}
			return true, nil
		})
	})
	if len(out) == 0 {
		return fallback, err
	}
	return out, err
}

// rotateRequest is a rotation of this log's node: author is its inception
// key (raw).
type rotateRequest struct {
	author []byte
	body   topics.Rotate
}

// Rotate publishes a rotate record for the author (its inception key,
// raw), signed by key, the key the author committed to: it continues the
// node tracker after the head the record names for it, voids what the log
// holds past the heads, and makes key the author's current key, with which
// Publish then signs for the author. A key that is not the one committed
// to is refused (ErrNotCommitted).
func (l *Log) Rotate(ctx context.Context, author []byte, key crypto.PrivKey, body topics.Rotate) (Published, error) {
	rep, err := l.do(ctx, &request{key: key, rotate: &rotateRequest{author: author, body: body}})
	if err != nil {
		return Published{}, err
	}
	return rep.pubs[0], nil
}

// ErrNotCommitted refuses a rotation to a key its author did not commit to.
var ErrNotCommitted = errors.New("feed: not the key the node committed to")

func (t *txn) publishRotate(key crypto.PrivKey, r *rotateRequest) (Published, error) {
	id, err := nodeID(r.author)
	if err != nil {
		return Published{}, err
	}
	nt := topics.DeriveTrackerID(r.author, "")
	h := rotationHead(r.body.Heads, nt)
	body := r.body
	a, err := topics.SignAs(key, id, &topics.Payload{V: 1, Kind: topics.KindRotate, Tracker: nt, Seq: h.Seq + 1, Prev: h.ID,
		Time: topics.FormatTime(t.l.cfg.Now()), Rotate: &body})
	if err != nil {
		return Published{}, err
	}
	res, err := t.append(a, topics.ID{})
	switch {
	case err != nil:
		return Published{}, err
	case res.Status == Refused || res.Status == Unplaced:
		return Published{}, ErrNotCommitted
	case res.Status != Stored:
		return Published{}, fmt.Errorf("feed: rotate not stored: %v", res.Status)
	}
	return Published{ID: a.ID, Cursor: res.Cursor, Seq: a.Payload.Seq, New: true}, t.b.Set(ownHeadKey(nt), ownHead(a), nil)
}
