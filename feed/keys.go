package feed

import (
	"encoding/binary"
	"fmt"

	"github.com/thingtracker/ttn/topics"
)

// The key space. Every key starts with a one-byte prefix; integers are
// big-endian so that keys sort numerically.
//
//	c tracker(16) author(32) seq(8) variant(1) → id(32) prev(32) envelope   chain order
//	e cursor(8)                                → entryRef                    arrival order
//	i id(32)                                   → cursor(8)                   dedupe, lookup
//	h tracker(16) author(32)                   → chainState (JSON)
//	t tracker(16) thing version seq(8)         → thingRef (a Thing announcement)
//	x tracker(16) thing version seq(8)         → thingRef (a retraction of that version)
//	k tracker(16)                              → TrackerState (JSON)
//	r target id(32)                            → retract id(32), pending target
//	p author(32) recordKey                     → seq(8) cursor(8), standing trust record or flag
//	v tracker(16) author(32) seq(8) variant(1) → as c, a void entry (evidence)
//	y author(32)                               → keyState (JSON), a rotated or committed author
//	a parent tracker(16) thing child…          → what derives from a Thing (ancestry.go)
//	m name                                     → metadata
//
// author is the raw 32-byte Ed25519 inception key of the author (the key
// its node ID embeds; the signer's unless the author rotated). variant is
// 0, or 1 for the second envelope of a fork, with voidBit set for a void
// entry. thing and version are uvarint-length-
// prefixed strings. The t and x keys are written blind (never read back by
// an append); a Thing's state is derived from them when it is read.
// recordKey is topics.Payload.RecordKey, the rest of the key (records.go).
const (
	prefixChain     = 'c'
	prefixEntry     = 'e'
	prefixID        = 'i'
	prefixHead      = 'h'
	prefixThing     = 't'
	prefixRetracted = 'x'
	prefixTracker   = 'k'
	prefixRetract   = 'r'
	prefixRecord    = 'p'
	prefixMeta      = 'm'
	prefixVoid      = 'v'
	prefixKeys      = 'y'
	prefixDerived   = 'a'
)

// chainKey identifies a chain: one author's entries on one tracker.
type chainKey [16 + 32]byte

func makeChainKey(tracker topics.TrackerID, author []byte) chainKey {
	var k chainKey
	copy(k[:16], tracker[:])
	copy(k[16:], author)
	return k
}

func (k chainKey) tracker() topics.TrackerID { return topics.TrackerID(k[:16]) }
func (k chainKey) author() []byte            { return k[16:] }

// pos is one stored envelope's place in its chain.
type pos struct {
	chain   chainKey
	seq     uint64
	variant byte
}

func (p pos) key() []byte {
	b := make([]byte, 0, 1+len(p.chain)+8+1)
	if p.variant&voidBit != 0 {
		b = append(b, prefixVoid)
	} else {
		b = append(b, prefixChain)
	}
	b = append(b, p.chain[:]...)
	b = binary.BigEndian.AppendUint64(b, p.seq)
	return append(b, p.variant)
}

func chainSeqKey(k chainKey, seq uint64) []byte { return pos{k, seq, 0}.key()[:1+len(k)+8] }

func parsePosKey(b []byte) (pos, error) {
	var p pos
	if len(b) != 1+len(p.chain)+8+1 || b[0] != prefixChain && b[0] != prefixVoid {
		return p, fmt.Errorf("feed: bad chain key %x", b)
	}
	copy(p.chain[:], b[1:])
	p.seq = binary.BigEndian.Uint64(b[1+len(p.chain):])
	p.variant = b[len(b)-1]
	return p, nil
}

func entryKey(cursor uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixEntry}, cursor)
}

func idKey(id topics.ID) []byte {
	return append([]byte{prefixID}, id[:]...)
}

func headKey(k chainKey) []byte {
	return append([]byte{prefixHead}, k[:]...)
}

// thingPrefix is the prefix of a Thing's t (or x) keys; with thing == ""
// and whole false, of all of a tracker's.
func thingPrefix(prefix byte, tracker topics.TrackerID, thing string, whole bool) []byte {
	b := append([]byte{prefix}, tracker[:]...)
	if !whole {
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(thing)))
	return append(b, thing...)
}

func thingVersionKey(prefix byte, tracker topics.TrackerID, thing, version string, seq uint64) []byte {
	b := thingPrefix(prefix, tracker, thing, true)
	b = binary.AppendUvarint(b, uint64(len(version)))
	b = append(b, version...)
	return binary.BigEndian.AppendUint64(b, seq)
}

// parseThingVersionKey returns the thing, version and seq of a t or x key.
func parseThingVersionKey(k []byte) (thing, version string, seq uint64, err error) {
	rest := k[1+16:]
	thing, ok1 := cutString(&rest)
	version, ok2 := cutString(&rest)
	if !ok1 || !ok2 || len(rest) != 8 {
		return "", "", 0, fmt.Errorf("feed: bad thing key %x", k)
	}
	return thing, version, binary.BigEndian.Uint64(rest), nil
}

// cutString takes a uvarint-length-prefixed string off the front of *b.
func cutString(b *[]byte) (string, bool) {
	n, w := binary.Uvarint(*b)
	if w <= 0 || n > uint64(len(*b)-w) {
		return "", false
	}
	s := string((*b)[w : w+int(n)])
	*b = (*b)[w+int(n):]
	return s, true
}

// thingRef is the value of a t or x key: id(32) cursor(8) hash(32), then,
// for a Thing announcement with parents, their JSON.
func (r Ref) encode(parents []topics.Parent) ([]byte, error) {
	b := make([]byte, 0, 72)
	b = append(b, r.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, r.Cursor)
	b = append(b, r.Hash[:]...)
	if len(parents) == 0 {
		return b, nil
	}
	pj, err := encodeState(parents)
	return append(b, pj...), err
}

func decodeRef(v []byte, seq uint64) (Ref, []topics.Parent, error) {
	if len(v) < 72 {
		return Ref{}, nil, fmt.Errorf("feed: bad thing record (%d bytes)", len(v))
	}
	r := Ref{ID: topics.ID(v[:32]), Seq: seq, Cursor: binary.BigEndian.Uint64(v[32:40]), Hash: topics.ID(v[40:72])}
	var parents []topics.Parent
	if len(v) > 72 {
		if err := decodeState(v[72:], &parents); err != nil {
			return r, nil, fmt.Errorf("feed: thing record parents: %w", err)
		}
	}
	return r, parents, nil
}

func trackerKey(t topics.TrackerID) []byte {
	return append([]byte{prefixTracker}, t[:]...)
}

func retractKey(target topics.ID) []byte {
	return append([]byte{prefixRetract}, target[:]...)
}

var keyLastCursor = []byte{prefixMeta, 'c', 'u', 'r', 's', 'o', 'r'}

// prefixEnd returns the first key after every key starting with prefix.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // prefix is all 0xff: no upper bound
}

// entryRef is the value of an 'e' key: where the envelope lives and what it is.
//
//	id(32) pos-key(58) kind
type entryRef struct {
	id   topics.ID
	pos  pos
	kind string
}

func (r entryRef) encode() []byte {
	pk := r.pos.key()
	b := make([]byte, 0, 32+len(pk)+len(r.kind))
	b = append(b, r.id[:]...)
	b = append(b, pk...)
	return append(b, r.kind...)
}

func decodeEntryRef(b []byte) (entryRef, error) {
	var r entryRef
	const pkLen = 1 + 48 + 8 + 1
	if len(b) < 32+pkLen {
		return r, fmt.Errorf("feed: bad entry record (%d bytes)", len(b))
	}
	copy(r.id[:], b)
	p, err := parsePosKey(b[32 : 32+pkLen])
	if err != nil {
		return r, err
	}
	r.pos = p
	r.kind = string(b[32+pkLen:])
	return r, nil
}

// chainValue is the value of a 'c' key: id(32) prev(32) envelope.
func chainValue(a *topics.Announcement) []byte {
	b := make([]byte, 0, 64+len(a.Raw()))
	b = append(b, a.ID[:]...)
	b = append(b, a.Payload.Prev[:]...)
	return append(b, a.Raw()...)
}

// link is what a chain value says about its neighbours.
type link struct {
	id, prev topics.ID
}

func decodeChainValue(b []byte) (link, []byte, error) {
	if len(b) < 64 {
		return link{}, nil, fmt.Errorf("feed: bad chain record (%d bytes)", len(b))
	}
	return link{id: topics.ID(b[:32]), prev: topics.ID(b[32:64])}, b[64:], nil
}
