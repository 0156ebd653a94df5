package topics

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/record"
	recordpb "github.com/libp2p/go-libp2p/core/record/pb"
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"google.golang.org/protobuf/proto"
)

// Domain separates TTN signatures from every other use of the same key.
const Domain = "thing-tracker-network"

// Payload types carried in envelopes.
var (
	// AnnouncementType is the payload type of announcements on tracker topics.
	AnnouncementType = []byte("/ttn/announcement/1")
	// DiscoveryType is the payload type of discovery records.
	DiscoveryType = []byte("/ttn/discovery/1")
)

// MaxEnvelopeSize bounds an envelope's encoded size.
const MaxEnvelopeSize = 64 << 10

// Envelope is a decoded libp2p signed envelope (go-libp2p core/record) in
// canonical form. DecodeEnvelope checks its shape; Verify checks its
// signature. An Envelope is immutable and safe for concurrent use.
type Envelope struct {
	Raw         []byte // the canonical encoded bytes
	RawKey      []byte // the raw 32-byte Ed25519 public key
	PayloadType []byte
	Payload     []byte
	signature   []byte
}

// DecodeEnvelope decodes envelope bytes without checking the signature. It
// refuses oversize input, a key type other than Ed25519, and non-canonical
// bytes: re-encoding the decoded envelope must give data back exactly, so one
// signed announcement has one byte form and one ID.
func DecodeEnvelope(data []byte) (*Envelope, error) {
	if len(data) > MaxEnvelopeSize {
		return nil, rejectf("envelope is %d bytes, over the %d byte limit", len(data), MaxEnvelopeSize)
	}
	if e, ok := decodeCanonical(data); ok {
		return e, nil
	}
	return nil, explainEnvelope(data)
}

// The canonical encoding of an envelope with an Ed25519 key, as go-libp2p's
// Envelope.Marshal produces it: fields in order, minimal varints.
//
//	0a 24 (08 01 12 20 <32-byte key>)   public_key: KeyType Ed25519, data
//	12 <len> <payload type>             payload_type, not empty
//	1a <len> <payload>                  payload, not empty
//	2a 40 <64-byte signature>           signature
var keyPrefix = []byte{0x0a, 0x24, 0x08, 0x01, 0x12, 0x20}

// decodeCanonical decodes data if and only if it is a canonical envelope
// with an Ed25519 key and a 64-byte signature. It allocates only the result.
func decodeCanonical(data []byte) (*Envelope, bool) {
	if !bytes.HasPrefix(data, keyPrefix) || len(data) < len(keyPrefix)+ed25519.PublicKeySize {
		return nil, false
	}
	rest := data[len(keyPrefix):]
	rawKey := rest[:ed25519.PublicKeySize]
	rest = rest[ed25519.PublicKeySize:]
	field := func(tag byte) ([]byte, bool) {
		if len(rest) == 0 || rest[0] != tag {
			return nil, false
		}
		n, w := binary.Uvarint(rest[1:])
		if w <= 0 || w != uvarintLen(n) || n == 0 || n > uint64(len(rest)-1-w) {
			return nil, false
		}
		v := rest[1+w : 1+w+int(n)]
		rest = rest[1+w+int(n):]
		return v, true
	}
	typ, ok1 := field(0x12)
	payload, ok2 := field(0x1a)
	sig, ok3 := field(0x2a)
	if !ok1 || !ok2 || !ok3 || len(sig) != ed25519.SignatureSize || len(rest) != 0 {
		return nil, false
	}
	return &Envelope{Raw: data, RawKey: rawKey, PayloadType: typ, Payload: payload, signature: sig}, true
}

// PublicKey returns the signer's key as a libp2p key.
func (e *Envelope) PublicKey() (crypto.PubKey, error) {
	return crypto.UnmarshalEd25519PublicKey(e.RawKey)
}

func uvarintLen(n uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], n)
}

// explainEnvelope says why data is not a canonical Ed25519 envelope, by
// decoding it with protobuf and re-encoding it the way go-libp2p does.
func explainEnvelope(data []byte) error {
	var m recordpb.Envelope
	if err := proto.Unmarshal(data, &m); err != nil {
		return rejectf("envelope: not a signed envelope: %v", err)
	}
	if m.PublicKey == nil {
		return rejectf("envelope: no public key")
	}
	if m.PublicKey.GetType() != cryptopb.KeyType_Ed25519 {
		return rejectf("envelope: key type %s is not Ed25519", m.PublicKey.GetType())
	}
	if _, err := crypto.UnmarshalEd25519PublicKey(m.PublicKey.GetData()); err != nil {
		return rejectf("envelope: bad Ed25519 key: %v", err)
	}
	if len(m.Signature) != ed25519.SignatureSize {
		return rejectf("envelope: signature is %d bytes, want %d", len(m.Signature), ed25519.SignatureSize)
	}
	if len(m.PayloadType) == 0 || len(m.Payload) == 0 {
		return rejectf("envelope: empty payload type or payload")
	}
	return rejectf("envelope: bytes are not in canonical form")
}

// marshalEnvelope produces the canonical encoding of an envelope, exactly as
// go-libp2p's Envelope.Marshal does.
func marshalEnvelope(rawKey, payloadType, payload, sig []byte) ([]byte, error) {
	return proto.Marshal(&recordpb.Envelope{
		PublicKey:   &cryptopb.PublicKey{Type: cryptopb.KeyType_Ed25519.Enum(), Data: rawKey},
		PayloadType: payloadType,
		Payload:     payload,
		Signature:   sig,
	})
}

// verifyOptions is the network's one signature rule: ZIP-215 (cofactored;
// non-canonical encodings of A and R accepted; S must be canonical), except
// that a public key of small order is refused, since anyone can sign for it.
// Every RFC 8032 signature crypto/ed25519 makes passes. It is also the rule
// batch verification computes, so a node that batches and one that does not
// accept exactly the same envelopes: every path on every node verifies with
// it (docs/PROTOCOL.md, "Signatures").
var verifyOptions = &ed25519.Options{Verify: &ed25519.VerifyOptions{
	AllowSmallOrderR:   true,
	AllowNonCanonicalA: true,
	AllowNonCanonicalR: true,
}}

// VerifySignature checks sig over msg by pub with the network's signature
// rule, as Verify does for an envelope's signed bytes.
func VerifySignature(pub, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize {
		return false
	}
	if x := expandedKey(pub); x != nil {
		return ed25519.VerifyExpandedWithOptions(x, msg, sig, verifyOptions)
	}
	return ed25519.VerifyWithOptions(pub, msg, sig, verifyOptions)
}

// keys holds the expanded form (~1.5 KiB of tables) of keys seen more than
// once: checking with it skips decompressing the key, an eighth of a check.
// A key is expanded at its second sighting, so a stream of fresh keys costs
// a map insert each, not an expansion; each map is emptied when full.
var keys struct {
	sync.RWMutex
	seen     map[[32]byte]bool
	expanded map[[32]byte]*ed25519.ExpandedPublicKey
}

const maxSeenKeys, maxExpandedKeys = 16384, 2048

// expandedKey returns pub's expanded form when it has been seen before, or
// nil.
func expandedKey(pub []byte) *ed25519.ExpandedPublicKey {
	k := [32]byte(pub)
	keys.RLock()
	x, ok := keys.expanded[k]
	keys.RUnlock()
	if ok {
		return x
	}
	keys.Lock()
	defer keys.Unlock()
	if x, ok := keys.expanded[k]; ok {
		return x
	}
	if !keys.seen[k] {
		if keys.seen == nil || len(keys.seen) >= maxSeenKeys {
			keys.seen = make(map[[32]byte]bool)
		}
		keys.seen[k] = true
		return nil
	}
	x, err := ed25519.NewExpandedPublicKey(pub)
	if err != nil {
		return nil // not a point: the plain check refuses it
	}
	if keys.expanded == nil || len(keys.expanded) >= maxExpandedKeys {
		keys.expanded = make(map[[32]byte]*ed25519.ExpandedPublicKey)
	}
	keys.expanded[k] = x
	return x
}

// Verify checks the envelope's signature over the domain-separated bytes
// (uvarint-length-prefixed domain, payload type and payload, as libp2p's
// record package signs them), by the network's signature rule.
func (e *Envelope) Verify() error {
	buf := signedPool.Get().(*[]byte)
	*buf = appendSigned((*buf)[:0], e.PayloadType, e.Payload)
	ok := VerifySignature(e.RawKey, *buf, e.signature)
	if cap(*buf) <= 2*MaxEnvelopeSize {
		signedPool.Put(buf)
	}
	if !ok {
		return rejectf("envelope: bad signature")
	}
	return nil
}

// signedPool recycles the buffers signatures are checked over.
var signedPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Signature returns the envelope's signature.
func (e *Envelope) Signature() []byte { return e.signature }

// SignedBytes returns what the envelope's signature covers.
func (e *Envelope) SignedBytes() []byte { return appendSigned(nil, e.PayloadType, e.Payload) }

// appendSigned appends the uvarint-length-prefixed domain, payload type and
// payload: what libp2p's record package signs.
func appendSigned(b, payloadType, payload []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(Domain)))
	b = append(b, Domain...)
	b = binary.AppendUvarint(b, uint64(len(payloadType)))
	b = append(b, payloadType...)
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// rawRecord adapts a payload to go-libp2p's record.Record so Seal can sign it.
type rawRecord struct {
	typ, payload []byte
}

func (r *rawRecord) Domain() string                       { return Domain }
func (r *rawRecord) Codec() []byte                        { return r.typ }
func (r *rawRecord) MarshalRecord() ([]byte, error)       { return r.payload, nil }
func (r *rawRecord) UnmarshalRecord(payload []byte) error { r.payload = payload; return nil }

// Seal signs payload as an envelope of payloadType with key, which must be
// Ed25519, and returns the envelope bytes. Signing is deterministic: the same
// key and payload always give the same bytes.
func Seal(key crypto.PrivKey, payloadType, payload []byte) ([]byte, error) {
	if key.Type() != crypto.Ed25519 {
		return nil, ErrKeyType
	}
	env, err := record.Seal(&rawRecord{typ: payloadType, payload: payload}, key)
	if err != nil {
		return nil, fmt.Errorf("topics: seal: %w", err)
	}
	b, err := env.Marshal()
	if err != nil {
		return nil, fmt.Errorf("topics: seal: %w", err)
	}
	if len(b) > MaxEnvelopeSize {
		return nil, rejectf("envelope is %d bytes, over the %d byte limit", len(b), MaxEnvelopeSize)
	}
	return b, nil
}

// VerifyAll checks the signatures of envs in one batch: the same rule as
// Verify, at about half the cost per signature when the batch holds many
// envelopes of few keys, as a fetched chain does. errs[i] is Verify's error
// for envs[i].
func VerifyAll(envs []*Envelope) (errs []error) {
	errs = make([]error, len(envs))
	if len(envs) < 2 {
		for i, e := range envs {
			errs[i] = e.Verify()
		}
		return errs
	}
	v := ed25519.NewBatchVerifierWithCapacity(len(envs))
	size := 0
	for _, e := range envs {
		size += len(Domain) + len(e.PayloadType) + len(e.Payload) + 3*binary.MaxVarintLen64
	}
	signed := make([]byte, 0, size)
	for _, e := range envs {
		start := len(signed)
		signed = appendSigned(signed, e.PayloadType, e.Payload)
		msg := signed[start:len(signed):len(signed)]
		// A key used more than once is expanded once, not for each of its
		// signatures: 14 µs a signature against 19 µs in a batch of a
		// hundred of one key.
		if x := expandedKey(e.RawKey); x != nil {
			v.AddExpandedWithOptions(x, msg, e.signature, verifyOptions)
		} else {
			v.AddWithOptions(e.RawKey, msg, e.signature, verifyOptions)
		}
	}
	if ok, valid := v.Verify(nil); !ok {
		for i, good := range valid {
			if !good {
				errs[i] = rejectf("envelope: bad signature")
			}
		}
	}
	return errs
}
