package datadir

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/tyler-smith/go-bip39"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// Recovery (DESIGN.md, "Key rotation and recovery"): a node commits, in its
// node records, to a recovery key it does not keep. The key is shown once,
// as a phrase of 24 words (BIP-39, English): its 256 bits of entropy are the
// Ed25519 seed of the key. Whoever holds the phrase can rotate the node's
// signing key, so it belongs offline, on paper; the dir keeps only the
// commitment, in the node's records.

// recoveryWords is the length of a recovery phrase: 24 words carry 256 bits.
const recoveryWords = 24

// Errors of recovery.
var (
	// ErrCommitted refuses a second commitment: the one in force is the
	// first a node announced, and only a rotation sets the next.
	ErrCommitted = errors.New("datadir: the node already committed to a recovery key")
	// ErrBadPhrase is a recovery phrase that is not 24 words of the
	// BIP-39 English list with a valid checksum.
	ErrBadPhrase = errors.New("datadir: not a recovery phrase")
)

// NewRecoveryPhrase makes a recovery key and returns its phrase and its
// commitment. The key itself is not kept: the phrase gives it back.
func NewRecoveryPhrase() (phrase, commitment string, err error) {
	entropy, err := bip39.NewEntropy(256)
	if err != nil {
		return "", "", err
	}
	phrase, err = bip39.NewMnemonic(entropy)
	if err != nil {
		return "", "", err
	}
	k, err := RecoveryKey(phrase)
	if err != nil {
		return "", "", err
	}
	raw, err := topics.RawPublicKey(k.GetPublic())
	if err != nil {
		return "", "", err
	}
	return phrase, topics.Commitment(raw), nil
}

// RecoveryKey returns the key a recovery phrase stands for. Case and the
// space between words do not matter.
func RecoveryKey(phrase string) (crypto.PrivKey, error) {
	words := strings.Fields(strings.ToLower(phrase))
	if len(words) != recoveryWords {
		return nil, fmt.Errorf("%w: %d words, want %d", ErrBadPhrase, len(words), recoveryWords)
	}
	entropy, err := bip39.EntropyFromMnemonic(strings.Join(words, " "))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPhrase, err)
	}
	return crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(entropy))
}

// Commitment returns the commitment in force for this node: that of its
// lowest-seq node record carrying one, or its last rotation's ("" when it
// has none).
func (c *Dir) Commitment() (string, error) { return c.Log.KeyState(c.ID.RawKey).Commitment, nil }

// KeyView returns the key state of the node whose inception key is raw:
// its commitment in force, and its rotations (nil when it never rotated).
func (c *Dir) KeyView(raw []byte) (string, *view.KeyState) {
	ks := c.Log.KeyState(raw)
	if ks.Rotations == 0 {
		return ks.Commitment, nil
	}
	return ks.Commitment, &view.KeyState{Fingerprint: topics.FingerprintOf(ks.Current), Rotations: ks.Rotations,
		Retired: ks.Retired, Void: ks.Void}
}

// Commit announces a node record committing this node to the recovery key
// of commitment (see NewRecoveryPhrase), for an identity without one: it
// refuses with ErrCommitted when a node record already carries one.
func (c *Dir) Commit(ctx context.Context, commitment string) (feed.Published, error) {
	c.publish.Lock()
	defer c.publish.Unlock()
	have, err := c.Commitment()
	if err != nil {
		return feed.Published{}, err
	}
	if have != "" {
		return feed.Published{}, fmt.Errorf("%w (%s…): only a rotation sets the next", ErrCommitted, have[:12])
	}
	ps, err := c.publishNode(ctx, nil, func(n *topics.NodeInfo) { n.Next = commitment })
	if err != nil {
		return feed.Published{}, err
	}
	return ps[len(ps)-1], nil
}
