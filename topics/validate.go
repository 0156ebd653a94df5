package topics

import (
	"bytes"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// signer is what validation derives from a signer's key: its node ID and its
// node tracker.
type signer struct {
	id          string
	nodeTracker TrackerID
}

// signers caches what is derived from keys: encoding a node ID (protobuf,
// multihash, base58) costs more than every other stateless check but the
// signature, and a node hears the same authors again and again.
var signers struct {
	sync.RWMutex
	m map[[32]byte]signer
}

const maxCachedSigners = 4096

// signerOf returns what validation needs of the envelope's signer.
func signerOf(e *Envelope) (signer, error) {
	k := [32]byte(e.RawKey)
	signers.RLock()
	s, ok := signers.m[k]
	signers.RUnlock()
	if ok {
		return s, nil
	}
	pub, err := e.PublicKey()
	if err != nil {
		return signer{}, err
	}
	pid, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return signer{}, err
	}
	s = signer{id: pid.String(), nodeTracker: DeriveTrackerID(e.RawKey, "")}
	signers.Lock()
	if signers.m == nil || len(signers.m) >= maxCachedSigners {
		signers.m = make(map[[32]byte]signer)
	}
	signers.m[k] = s
	signers.Unlock()
	return s, nil
}

// MaxClockSkew is how far in the future an announcement's time may be before
// it is ignored. The past is never bounded: history and offline backlogs are
// old by nature.
const MaxClockSkew = 10 * time.Minute

var timeZero time.Time

// Announcement is a validated announcement: its ID, envelope and payload.
// Only Validate and Check produce one; treat it as immutable.
type Announcement struct {
	ID      ID
	Env     *Envelope
	Payload *Payload
	// AuthorKey is the author's inception key (raw, the key its node ID
	// embeds): its chains and trackers are named by it. It is the signer's
	// key (Env.RawKey) unless the author rotated (Rotated).
	AuthorKey []byte
}

// Rotated reports whether the announcement is signed by a key other than
// its author's inception key. Such an announcement passes the stateless
// checks but is valid only when the author's key state (the rotate records
// the log holds) places the signer: feed.Log checks it before storing.
func (a *Announcement) Rotated() bool { return !bytes.Equal(a.AuthorKey, a.Env.RawKey) }

// Raw returns the envelope bytes.
func (a *Announcement) Raw() []byte { return a.Env.Raw }

// Topic returns the tracker topic the announcement belongs on.
func (a *Announcement) Topic() string { return TrackerTopic(a.Payload.Tracker) }

// DecodeAnnouncement runs the cheap checks on envelope bytes: size, decoding,
// canonical form, Ed25519 key, announcement payload type. It does not verify
// the signature.
func DecodeAnnouncement(data []byte) (*Envelope, error) {
	e, err := DecodeEnvelope(data)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(e.PayloadType, AnnouncementType) {
		return nil, rejectf("envelope: payload type %q is not %q", clip(string(e.PayloadType)), AnnouncementType)
	}
	return e, nil
}

// Check runs the checks after the signature, on an envelope whose signature
// has been verified: the strict payload, the author (the signer, or an
// Ed25519 node ID whose key state must place the signer: see Rotated),
// tracker owner (by the author's inception key), the topic (when topic is
// not ""), the kind's tracker, and the clock (when now is not zero). id is
// the envelope's ID.
func Check(e *Envelope, id ID, topic string, now time.Time) (*Announcement, error) {
	p, err := ParsePayload(e.Payload)
	if err != nil {
		return nil, err
	}
	sg, err := signerOf(e)
	if err != nil {
		return nil, rejectf("envelope: %v", err)
	}
	authorKey := e.RawKey
	if p.Author != sg.id {
		// A rotated author, or a forgery: the key state decides (feed).
		raw, err := NodeKey(p.Author)
		if err != nil {
			return nil, rejectf("payload: author %q is not the signer %s, nor a node ID: %v", clip(p.Author), sg.id, err)
		}
		sg, authorKey = signer{id: p.Author, nodeTracker: DeriveTrackerID(raw, "")}, raw
	}
	// The tracker's owner prefix is the node tracker's.
	if [ownerPrefixLen]byte(p.Tracker[:]) != [ownerPrefixLen]byte(sg.nodeTracker[:]) {
		return nil, rejectf("payload: tracker %s is not owned by author %s", p.Tracker, sg.id)
	}
	if topic != "" && topic != TrackerTopic(p.Tracker) {
		return nil, rejectf("announcement for tracker %s arrived on topic %q", p.Tracker, clip(topic))
	}
	if !p.Opaque() {
		nodeTracker := sg.nodeTracker
		switch {
		case p.Kind == KindTracker && p.Tracker != DeriveTrackerID(authorKey, p.TrackerInfo.Name):
			return nil, rejectf("payload: tracker %s is not named %q", p.Tracker, clip(p.TrackerInfo.Name))
		case OnNodeTracker(p.Kind) && p.Tracker != nodeTracker:
			return nil, rejectf("payload: %s record on tracker %s, not the node tracker %s", p.Kind, p.Tracker, nodeTracker)
		case !OnNodeTracker(p.Kind) && p.Tracker == nodeTracker:
			return nil, rejectf("payload: the node tracker carries node, rotate, trust and flag records only, not %q", p.Kind)
		case p.Kind == KindRotate:
			if err := checkRotateSigner(p, e.RawKey, authorKey); err != nil {
				return nil, err
			}
		}
	}
	if !now.IsZero() {
		t, _ := ParseTime(p.Time) // checked by ParsePayload
		if t.After(now.Add(MaxClockSkew)) {
			return nil, ignoref("payload: time %s is more than %s in the future", p.Time, MaxClockSkew)
		}
	}
	return &Announcement{ID: id, Env: e, Payload: p, AuthorKey: authorKey}, nil
}

// checkRotateSigner checks what a rotate record says of its own signer: it
// is signed by the key it names, which is not the inception key.
func checkRotateSigner(p *Payload, signerKey, authorKey []byte) error {
	raw, _ := p.Rotate.RawKey() // checked by ParsePayload
	switch {
	case !bytes.Equal(raw, signerKey):
		return rejectf("payload: rotate names a key other than its signer's")
	case bytes.Equal(signerKey, authorKey):
		return rejectf("payload: rotate signed by the author's inception key")
	}
	return nil
}

// Validate runs every stateless check on an announcement received on topic
// (or from anywhere when topic is ""), cheapest first. now is the local clock,
// or zero to skip the clock check (sync and stored history). The error, if
// any, is an *Error whose outcome says whether to Reject or Ignore.
//
// An announcement signed by a key other than its author's inception key
// (Rotated) is ignored: without the author's rotate records nothing says
// the key is the author's. A store that keeps key states uses
// ValidateRotated and judges the signer itself.
func Validate(topic string, data []byte, now time.Time) (*Announcement, error) {
	a, err := ValidateRotated(topic, data, now)
	if err == nil && a.Rotated() {
		return nil, ignoref("payload: author %s is not the signer; only the author's rotate records could place the key", a.Payload.Author)
	}
	return a, err
}

// ValidateRotated is Validate's, but returns a Rotated announcement for the
// caller to place by the author's key state (feed.Log does).
func ValidateRotated(topic string, data []byte, now time.Time) (*Announcement, error) {
	e, err := DecodeAnnouncement(data)
	if err != nil {
		return nil, err
	}
	if err := e.Verify(); err != nil {
		return nil, err
	}
	return Check(e, IDOf(data), topic, now)
}

// ValidateAll validates many announcements received on topic, as
// ValidateRotated does each one (for a store that places signers), but
// checks their signatures in one batch (VerifyAll).
// errs[i] is the error for data[i]; anns[i] is nil when errs[i] is not.
func ValidateAll(topic string, data [][]byte, now time.Time) (anns []*Announcement, errs []error) {
	anns = make([]*Announcement, len(data))
	errs = make([]error, len(data))
	envs := make([]*Envelope, 0, len(data))
	at := make([]int, 0, len(data))
	for i, d := range data {
		e, err := DecodeAnnouncement(d)
		if err != nil {
			errs[i] = err
			continue
		}
		envs = append(envs, e)
		at = append(at, i)
	}
	for j, err := range VerifyAll(envs) {
		i := at[j]
		if err != nil {
			errs[i] = err
			continue
		}
		anns[i], errs[i] = Check(envs[j], IDOf(data[i]), topic, now)
	}
	return anns, errs
}
