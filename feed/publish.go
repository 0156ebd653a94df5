package feed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/topics"
)

var zeroTime time.Time

// Draft is an announcement this node wants to publish: a kind, its tracker
// and its body. The log fills in the chain fields (seq, prev), the author and
// the time, and signs it.
type Draft struct {
	Tracker topics.TrackerID
	Kind    string

	Thing       *topics.Thing       // KindThing
	TrackerInfo *topics.TrackerInfo // KindTracker
	Retracts    topics.ID           // KindRetract
	NodeInfo    *topics.NodeInfo    // KindNode
	Trust       *topics.Trust       // KindTrust
	Flag        *topics.Flag        // KindFlag
}

// Published is the outcome of one draft.
type Published struct {
	ID     topics.ID `json:"id"`
	Cursor uint64    `json:"cursor"`
	Seq    uint64    `json:"seq"`
	// New is false when the draft changed nothing (identical content, a
	// retraction already in force, a trust record or flag identical to the
	// author's standing one) and ID is the existing announcement.
	New bool `json:"new"`
}

// Errors of Publish.
var (
	ErrFrozen = errors.New("feed: the chain is frozen by a fork")
	// ErrRetired: the author retired its identity (a rotation committed
	// to no next key), or the key no longer signs for it.
	ErrRetired   = errors.New("feed: the key no longer signs for its node (the node retired, or rotated to another key)")
	ErrNoTarget  = errors.New("feed: no such Thing announcement of this author on this tracker")
	errBadDraftT = errors.New("feed: draft kind and body disagree")
	// ErrWrongTracker: a node, trust or flag record not on its author's
	// node tracker, or another kind on it.
	ErrWrongTracker = errors.New("feed: wrong tracker for this kind")
)

// draft is a Draft checked and hashed before it reaches the writer.
type draft struct {
	Draft
	hash topics.ID // canonical body hash
}

// payload builds the payload of d at seq after prev.
func (d *Draft) payload(seq uint64, prev topics.ID, now time.Time) *topics.Payload {
	return &topics.Payload{
		V: topics.Version, Kind: d.Kind, Tracker: d.Tracker, Seq: seq, Prev: prev,
		Time:  topics.FormatTime(now),
		Thing: d.Thing, TrackerInfo: d.TrackerInfo, Retracts: d.Retracts, NodeInfo: d.NodeInfo,
		Trust: d.Trust, Flag: d.Flag,
	}
}

// prepare checks d as far as it can without the log's state, so that a
// publish rarely fails inside the writer, and computes its body hash.
func prepare(d Draft, rawKey []byte) (*draft, error) {
	if !d.Tracker.OwnedBy(rawKey) {
		return nil, fmt.Errorf("%w: tracker %s", ErrNotOwner, d.Tracker)
	}
	if d.bodies() != 1 {
		return nil, errBadDraftT
	}
	nodeTracker := topics.DeriveTrackerID(rawKey, "")
	switch on := topics.OnNodeTracker(d.Kind); {
	case on && d.Tracker != nodeTracker:
		return nil, fmt.Errorf("%w: a %s record goes on the author's node tracker %s, not on %s", ErrWrongTracker, d.Kind, nodeTracker, d.Tracker)
	case !on && d.Tracker == nodeTracker:
		return nil, fmt.Errorf("%w: the node tracker carries node, trust and flag records only, not %q", ErrWrongTracker, d.Kind)
	}
	var err error
	switch {
	case d.Kind == topics.KindThing && d.Thing != nil:
		err = d.Thing.Check()
	case d.Kind == topics.KindTracker && d.TrackerInfo != nil:
		err = d.TrackerInfo.Check()
	case d.Kind == topics.KindNode && d.NodeInfo != nil:
		err = d.NodeInfo.Check()
	case d.Kind == topics.KindTrust && d.Trust != nil:
		if err = d.Trust.Check(); err == nil {
			if subject, _ := topics.ParseNodeID(d.Trust.Subject); bytes.Equal(subject, rawKey) {
				err = errors.New("trust.subject is the author itself")
			}
		}
	case d.Kind == topics.KindFlag && d.Flag != nil:
		err = d.Flag.Check()
	case d.Kind == topics.KindRetract && !d.Retracts.IsZero():
	default:
		return nil, errBadDraftT
	}
	if err != nil {
		return nil, err
	}
	// Encode once with the largest chain fields to catch an oversize body.
	p := d.payload(topics.MaxSeq, topics.ID{1}, time.Now())
	p.Author = "12D3KooWxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	b, err := p.Marshal()
	if err != nil {
		return nil, err
	}
	const envelopeOverhead = 256 // key, payload type, signature, framing
	if len(b)+envelopeOverhead > topics.MaxEnvelopeSize {
		return nil, fmt.Errorf("feed: announcement would be about %d bytes, over the %d byte limit", len(b)+envelopeOverhead, topics.MaxEnvelopeSize)
	}
	h, err := bodyHash(p)
	if err != nil {
		return nil, err
	}
	return &draft{Draft: d, hash: h}, nil
}

// bodies counts the bodies d sets: a payload carries exactly one.
func (d *Draft) bodies() int {
	n := 0
	for _, set := range []bool{d.Thing != nil, d.TrackerInfo != nil, !d.Retracts.IsZero(), d.NodeInfo != nil, d.Trust != nil, d.Flag != nil} {
		if set {
			n++
		}
	}
	return n
}

// bodyHash is the SHA-256 of the canonical JSON (RFC 8785) of a payload's
// body: what decides whether a publish changes anything.
func bodyHash(p *topics.Payload) (topics.ID, error) {
	var body any
	switch p.Kind {
	case topics.KindThing:
		body = p.Thing
	case topics.KindTracker:
		body = p.TrackerInfo
	case topics.KindNode:
		body = p.NodeInfo
	case topics.KindTrust:
		body = p.Trust
	case topics.KindFlag:
		body = p.Flag
	default:
		body = p.Retracts
	}
	b, err := json.Marshal(body)
	if err != nil {
		return topics.ID{}, err
	}
	v := jsontext.Value(b)
	if err := v.Canonicalize(); err != nil {
		return topics.ID{}, err
	}
	return sha256.Sum256(v), nil
}

// Publish signs and appends drafts with key, in order, through the log's one
// seq allocator, and returns once they are durable. A draft whose content is
// already the latest (the same Thing version with identical fields, the same
// tracker or node record, a retraction already in force, the same trust
// record or flag as the author's standing one on its subject or target) is
// not published again: its Published has New false and the existing ID. Either every draft
// is applied or none is.
//
// key is the author's current key: its inception key, or the key it
// rotated to, which signs for it (the log knows whose it is).
func (l *Log) Publish(ctx context.Context, key crypto.PrivKey, drafts []Draft) ([]Published, error) {
	raw, err := topics.RawPublicKey(key.GetPublic())
	if err != nil {
		return nil, err
	}
	author, _, err := l.authorOf(raw)
	if err != nil {
		return nil, err
	}
	ds, err := prepareAll(author, drafts)
	if err != nil {
		return nil, err
	}
	rep, err := l.do(ctx, &request{key: key, drafts: ds})
	return rep.pubs, err
}

// CheckDrafts reports the first draft that Publish would refuse whatever the
// log holds (a body that breaks the payload rules or the size limit, a
// tracker the author does not own), so a caller can check many before
// publishing them in parts. author is the author's inception key, raw.
func CheckDrafts(author []byte, drafts []Draft) error {
	_, err := prepareAll(author, drafts)
	return err
}

func prepareAll(raw []byte, drafts []Draft) ([]*draft, error) {
	var err error
	ds := make([]*draft, len(drafts))
	for i, d := range drafts {
		if ds[i], err = prepare(d, raw); err != nil {
			if len(drafts) > 1 {
				err = fmt.Errorf("draft %d: %w", i+1, err)
			}
			return nil, err
		}
	}
	return ds, nil
}

// publish applies the drafts of one request.
func (t *txn) publish(key crypto.PrivKey, drafts []*draft) ([]Published, error) {
	signer, err := topics.RawPublicKey(key.GetPublic())
	if err != nil {
		return nil, err
	}
	raw, author, err := t.l.authorOf(signer)
	if err != nil {
		return nil, err
	}
	out := make([]Published, 0, len(drafts))
	for _, d := range drafts {
		k := makeChainKey(d.Tracker, raw)
		c, err := t.chain(k)
		if err != nil {
			return nil, err
		}
		if c.Fork != nil {
			return nil, fmt.Errorf("%w: tracker %s", ErrFrozen, d.Tracker)
		}
		existing, err := t.current(d, raw)
		if err != nil {
			return nil, err
		}
		if existing != nil {
			out = append(out, Published{ID: existing.ID, Cursor: existing.Cursor, Seq: existing.Seq})
			continue
		}
		a, err := topics.SignAs(key, author, d.payload(c.Max+1, c.MaxID, t.l.cfg.Now()))
		if err != nil {
			return nil, err
		}
		res, err := t.append(a, d.hash)
		if err != nil {
			return nil, err
		}
		if res.Status == Void {
			return nil, ErrRetired
		}
		if res.Status != Stored {
			return nil, fmt.Errorf("feed: own announcement not stored: %v", res.Status)
		}
		out = append(out, Published{ID: a.ID, Cursor: res.Cursor, Seq: a.Payload.Seq, New: true})
		if err := t.b.Set(ownHeadKey(d.Tracker), ownHead(a), nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// current returns the stored announcement that already says what d says,
// or nil if publishing d would change something. author is the publisher's
// raw key.
func (t *txn) current(d *draft, author []byte) (*Ref, error) {
	switch d.Kind {
	case topics.KindThing:
		s, err := t.thing(d.Tracker, d.Thing.ID)
		if err != nil {
			return nil, err
		}
		v := s.version(d.Thing.Version)
		if v == nil || v.Hidden() {
			return nil, nil
		}
		latest := v.Latest()
		return t.same(&latest, d.hash)
	case topics.KindTracker, topics.KindNode:
		tr, err := t.tracker(d.Tracker)
		if err != nil || tr.Info == nil {
			return nil, err
		}
		return t.same(tr.Info, d.hash)
	case topics.KindRetract:
		return t.currentRetraction(d)
	case topics.KindTrust, topics.KindFlag:
		return t.currentRecord(d, author)
	}
	return nil, errBadDraftT
}

// same returns ref if its body hash is h.
func (t *txn) same(ref *Ref, h topics.ID) (*Ref, error) {
	stored := ref.Hash
	if stored.IsZero() {
		a, err := t.announcementAt(ref.Cursor)
		if err != nil {
			return nil, err
		}
		if stored, err = bodyHash(a.Payload); err != nil {
			return nil, err
		}
	}
	if stored != h {
		return nil, nil
	}
	return ref, nil
}

// currentRetraction checks that a retraction's target is a Thing of this
// author on this tracker and returns the retraction in force, if any.
func (t *txn) currentRetraction(d *draft) (*Ref, error) {
	tc, err := t.cursorOf(d.Retracts)
	if err != nil {
		return nil, err
	}
	if tc == 0 {
		return nil, fmt.Errorf("%w: %s is not stored", ErrNoTarget, d.Retracts)
	}
	a, err := t.announcementAt(tc)
	if err != nil {
		return nil, err
	}
	if a.Payload.Kind != topics.KindThing || a.Payload.Opaque() || a.Payload.Tracker != d.Tracker {
		return nil, fmt.Errorf("%w: %s", ErrNoTarget, d.Retracts)
	}
	s, err := t.thing(d.Tracker, a.Payload.Thing.ID)
	if err != nil {
		return nil, err
	}
	v := s.version(a.Payload.Thing.Version)
	if v != nil && v.Hidden() {
		return v.Retracted, nil
	}
	return nil, nil
}
