package topics

import (
	"bytes"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// Discovery is a discovery record: a tracker owner's signed statement that
// the tracker exists and how far its chain goes. Owners re-announce them on
// the discovery topic periodically and when the head changes; indexers learn
// live trackers from them. They are not chain entries, and their payload type
// (DiscoveryType) keeps their bytes distinct from every announcement.
type Discovery struct {
	V       int       `json:"v"`
	Tracker TrackerID `json:"tracker"`
	Owner   string    `json:"owner"` // the owner's node ID; the signer
	Title   string    `json:"title,omitempty"`
	HeadSeq uint64    `json:"head_seq"`
	HeadID  ID        `json:"head_id,omitzero"`
	Time    string    `json:"time"`
}

// SignDiscovery fills in d's version and owner from key and returns the
// signed envelope bytes.
func SignDiscovery(key crypto.PrivKey, d *Discovery) ([]byte, error) {
	owner, err := NodeID(key.GetPublic())
	if err != nil {
		return nil, err
	}
	d.V, d.Owner = Version, owner
	b, err := json.Marshal(d, json.Deterministic(true))
	if err != nil {
		return nil, err
	}
	return Seal(key, DiscoveryType, b)
}

// ValidateDiscovery checks a discovery record received on the discovery
// topic: canonical envelope, Ed25519, payload type, signature, strict JSON,
// owner = signer = the tracker's owner, and a time at most MaxClockSkew
// after now (zero skips the clock).
func ValidateDiscovery(data []byte, now time.Time) (*Discovery, error) {
	e, err := DecodeEnvelope(data)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(e.PayloadType, DiscoveryType) {
		return nil, rejectf("envelope: payload type %q is not %q", clip(string(e.PayloadType)), DiscoveryType)
	}
	if err := e.Verify(); err != nil {
		return nil, err
	}
	if err := CheckStrictJSON(e.Payload); err != nil {
		return nil, rejectf("discovery: %v", err)
	}
	var w struct {
		Discovery
		Rest map[string]jsontext.Value `json:",embed"`
	}
	if err := strictUnmarshal(e.Payload, &w); err != nil {
		var v struct {
			V int `json:"v"`
		}
		if json.Unmarshal(e.Payload, &v) == nil && v.V > Version {
			return nil, ignoref("discovery: version %d", v.V)
		}
		return nil, rejectf("discovery: %v", err)
	}
	d := w.Discovery
	if d.V > Version {
		return nil, ignoref("discovery: version %d", d.V)
	}
	for name := range w.Rest {
		return nil, rejectf("discovery: unknown member %q", clip(name))
	}
	sg, err := signerOf(e)
	if err != nil {
		return nil, rejectf("envelope: %v", err)
	}
	switch {
	case d.V != Version:
		return nil, rejectf("discovery: version %d", d.V)
	case d.Owner != sg.id:
		return nil, rejectf("discovery: owner %q is not the signer %s", clip(d.Owner), sg.id)
	case [ownerPrefixLen]byte(d.Tracker[:]) != [ownerPrefixLen]byte(sg.nodeTracker[:]):
		return nil, rejectf("discovery: tracker %s is not owned by %s", d.Tracker, sg.id)
	case len(d.Title) > MaxTitleLen:
		return nil, rejectf("discovery: title is over %d bytes", MaxTitleLen)
	case strings.ContainsFunc(d.Title, isControl):
		return nil, rejectf("discovery: title holds a control character")
	case d.HeadSeq > MaxSeq || (d.HeadSeq == 0) != d.HeadID.IsZero():
		return nil, rejectf("discovery: bad head (seq %d)", d.HeadSeq)
	}
	t, err := ParseTime(d.Time)
	if err != nil {
		return nil, rejectf("discovery: %v", err)
	}
	if !now.IsZero() && t.After(now.Add(MaxClockSkew)) {
		return nil, ignoref("discovery: time %s is in the future", d.Time)
	}
	return &d, nil
}
