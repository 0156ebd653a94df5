package topics

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ID is an announcement ID: the SHA-256 of the envelope bytes. Its text form
// is 64 lowercase hex digits.
type ID [32]byte

// IDOf returns the announcement ID of envelope bytes.
func IDOf(envelope []byte) ID { return sha256.Sum256(envelope) }

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero ID (no announcement).
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts lowercase hex only.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseID parses the 64-digit lowercase hex form of an announcement ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) || strings.ToLower(s) != s {
		return id, fmt.Errorf("announcement id %q: want 64 lowercase hex digits", clip(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("announcement id %q: want 64 lowercase hex digits", clip(s))
	}
	return id, nil
}

// TrackerID names a tracker: sha256(owner public key)[:10] ‖
// sha256("ttn-tracker\0" ‖ name)[:6]. Its text form is 26 characters of
// lowercase unpadded RFC 4648 base32, safe as a topic segment, NATS token and
// URL segment.
type TrackerID [16]byte

// trackerEncoding is RFC 4648 base32, lowercase, without padding.
var trackerEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// TrackerIDLen is the length of a tracker ID's text form.
const TrackerIDLen = 26

// ownerPrefixLen is how many bytes of a tracker ID identify its owner.
const ownerPrefixLen = 10

// DeriveTrackerID computes the ID of the tracker called name owned by the key
// whose raw 32-byte Ed25519 public key is rawPub. The node tracker has name "".
func DeriveTrackerID(rawPub []byte, name string) TrackerID {
	var t TrackerID
	owner := sha256.Sum256(rawPub)
	h := sha256.New()
	h.Write([]byte("ttn-tracker\x00"))
	h.Write([]byte(name))
	var nameSum [sha256.Size]byte
	h.Sum(nameSum[:0])
	copy(t[:ownerPrefixLen], owner[:ownerPrefixLen])
	copy(t[ownerPrefixLen:], nameSum[:len(t)-ownerPrefixLen])
	return t
}

// OwnedBy reports whether the tracker belongs to the raw Ed25519 public key.
// The check is stateless: the owner prefix is recomputed from the key.
func (t TrackerID) OwnedBy(rawPub []byte) bool {
	owner := sha256.Sum256(rawPub)
	return [ownerPrefixLen]byte(owner[:ownerPrefixLen]) == [ownerPrefixLen]byte(t[:ownerPrefixLen])
}

// OwnerPrefix returns the bytes every tracker ID of the raw Ed25519 public
// key starts with: a key range holding all of its trackers.
func OwnerPrefix(rawPub []byte) []byte {
	owner := sha256.Sum256(rawPub)
	return owner[:ownerPrefixLen]
}

func (t TrackerID) String() string { return trackerEncoding.EncodeToString(t[:]) }

// IsZero reports whether t is the zero tracker ID.
func (t TrackerID) IsZero() bool { return t == TrackerID{} }

// MarshalText implements encoding.TextMarshaler.
func (t TrackerID) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// AppendText implements encoding.TextAppender.
func (t TrackerID) AppendText(b []byte) ([]byte, error) {
	return trackerEncoding.AppendEncode(b, t[:]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *TrackerID) UnmarshalText(b []byte) error {
	v, err := ParseTrackerID(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// ParseTrackerID parses the 26-character text form of a tracker ID. Only the
// canonical form is accepted: lowercase, no padding, zero trailing bits.
func ParseTrackerID(s string) (TrackerID, error) {
	var t TrackerID
	if len(s) != TrackerIDLen {
		return t, fmt.Errorf("tracker id %q: want %d base32 characters", clip(s), TrackerIDLen)
	}
	n, err := trackerEncoding.Decode(t[:], []byte(s))
	if err != nil || n != len(t) || t.String() != s {
		return t, fmt.Errorf("tracker id %q: not lowercase base32", clip(s))
	}
	return t, nil
}

// Topic names.
const (
	// TrackerTopicPrefix prefixes every tracker topic: ttn/tracker/<tracker id>.
	TrackerTopicPrefix = "ttn/tracker/"
	// DiscoveryTopic carries discovery records.
	DiscoveryTopic = "ttn/discovery"
)

// TrackerTopic returns the GossipSub topic of a tracker.
func TrackerTopic(t TrackerID) string { return TrackerTopicPrefix + t.String() }

// ParseTrackerTopic returns the tracker of a tracker topic name.
func ParseTrackerTopic(topic string) (TrackerID, error) {
	rest, ok := strings.CutPrefix(topic, TrackerTopicPrefix)
	if !ok {
		return TrackerID{}, fmt.Errorf("topic %q is not a tracker topic", clip(topic))
	}
	return ParseTrackerID(rest)
}

// ErrKeyType is returned for any key that is not Ed25519.
var ErrKeyType = errors.New("topics: key is not ed25519")

// RawPublicKey returns the raw 32-byte Ed25519 public key of k.
func RawPublicKey(k crypto.PubKey) ([]byte, error) {
	if k.Type() != crypto.Ed25519 {
		return nil, ErrKeyType
	}
	return k.Raw()
}

// NodeID returns the node ID of a public key: its libp2p peer ID in base58.
func NodeID(k crypto.PubKey) (string, error) {
	id, err := peer.IDFromPublicKey(k)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// Fingerprint is what people compare out of band: the first 16 bytes of
// sha256(raw public key), lowercase unpadded base32, in groups of four
// separated by "-".
func Fingerprint(k crypto.PubKey) (string, error) {
	raw, err := RawPublicKey(k)
	if err != nil {
		return "", err
	}
	return FingerprintOf(raw), nil
}

// FingerprintLen is the length of a fingerprint: 26 base32 characters in
// six groups of four and one of two, with six "-" between them.
const FingerprintLen = 32

// FingerprintOf returns the fingerprint of a raw Ed25519 public key.
func FingerprintOf(rawPub []byte) string {
	sum := sha256.Sum256(rawPub)
	var enc [TrackerIDLen]byte
	trackerEncoding.Encode(enc[:], sum[:16])
	b := make([]byte, 0, FingerprintLen)
	for i := 0; i < len(enc); i += 4 {
		if i > 0 {
			b = append(b, '-')
		}
		b = append(b, enc[i:min(i+4, len(enc))]...)
	}
	return string(b)
}

// CheckFingerprint reports whether s is a fingerprint as FingerprintOf
// writes it: lowercase base32 in groups of four separated by "-", with the
// unused low bits of the last character zero. It says nothing about whose.
func CheckFingerprint(s string) error {
	if len(s) != FingerprintLen {
		return fmt.Errorf("fingerprint %q: want %d characters like vyqw-ylxv-er5d-pawb-gxx2-e6nd-4q", clip(s), FingerprintLen)
	}
	var digits [TrackerIDLen]byte
	n := 0
	for i := 0; i < len(s); i++ {
		if i%5 == 4 {
			if s[i] != '-' {
				return fmt.Errorf("fingerprint %q: want groups of four separated by -", clip(s))
			}
			continue
		}
		digits[n] = s[i]
		n++
	}
	var sum [16]byte
	if m, err := trackerEncoding.Decode(sum[:], digits[:]); err != nil || m != len(sum) || trackerEncoding.EncodeToString(sum[:]) != string(digits[:]) {
		return fmt.Errorf("fingerprint %q: not lowercase base32", clip(s))
	}
	return nil
}

// clip shortens untrusted text quoted in an error message.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// ParseNodeID returns the raw Ed25519 public key of a node ID written as
// records must write it: the canonical base58 form NodeID returns. NodeKey
// also takes other spellings of the same ID (a CID); records may not, since
// they are keyed by the ID's text and one node must have one key.
func ParseNodeID(s string) ([]byte, error) {
	id, err := peer.Decode(s)
	if err != nil {
		return nil, fmt.Errorf("node id %q: %v", clip(s), err)
	}
	if id.String() != s {
		return nil, fmt.Errorf("node id %q: not in the canonical base58 form", clip(s))
	}
	return idKey(id, s)
}

// NodeKey returns the raw Ed25519 public key a node ID stands for.
func NodeKey(nodeID string) ([]byte, error) {
	id, err := peer.Decode(nodeID)
	if err != nil {
		return nil, fmt.Errorf("node id %q: %v", clip(nodeID), err)
	}
	return idKey(id, nodeID)
}

func idKey(id peer.ID, nodeID string) ([]byte, error) {
	k, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("node id %q: no key inside: %v", clip(nodeID), err)
	}
	raw, err := RawPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("node id %q: %w", clip(nodeID), err)
	}
	return raw, nil
}

// Commitment returns the commitment to a recovery key: the lowercase hex
// SHA-256 of its raw 32-byte public key (a node record's next).
func Commitment(rawPub []byte) string {
	h := sha256.Sum256(rawPub)
	return hex.EncodeToString(h[:])
}
