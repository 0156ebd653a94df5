package datadir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
)

// Key rotation (DESIGN.md, "Key rotation and recovery"): the recovery key a
// node committed to becomes its signing key; the node ID, which names the
// inception key, stays, and so do its trackers. Once rotated, the key file
// holds the current key and nodeIDFile the node ID it no longer embeds.

const (
	nodeIDFile  = "node_id"  // the node ID, once the key file holds a rotated key
	nextKeyFile = "key.next" // a rotation's key, until the log holds its rotate record
)

// Errors of rotation.
var (
	// ErrNoCommitment: the node never committed to a recovery key, so no
	// key can replace its own.
	ErrNoCommitment = errors.New("datadir: the node has no recovery commitment, so it cannot rotate ('announcer key commit' makes one while the key is still yours)")
	// ErrWrongPhrase: the phrase is not the one the node committed to.
	ErrWrongPhrase = errors.New("datadir: the recovery phrase is not the one this node committed to")
	// ErrSpentPhrase: the phrase's key already signs for the node: a
	// rotation used it, and the next rotation needs the phrase it gave.
	ErrSpentPhrase = errors.New("datadir: the recovery phrase was spent by an earlier rotation; use the phrase that rotation printed")
	// ErrRetired: the node retired its identity; nothing more is signed.
	ErrRetired = feed.ErrRetired
)

// Rotation is what Rotate did.
type Rotation struct {
	Published   feed.Published      `json:"published"`
	Heads       []topics.RotateHead `json:"heads"`       // what it vouches for
	Fingerprint string              `json:"fingerprint"` // of the new signing key
	Retired     bool                `json:"retired,omitempty"`
}

// Rotate replaces the node's signing key with key, the recovery key it
// committed to: it announces a rotate record signed by key that vouches for
// the node's own heads on each of its trackers (what it published itself;
// a thief's entries past them become void), commits to next (the
// commitment of a new recovery key, or "" to retire the identity), and
// from then on signs with key. reason is topics.ReasonCompromised, Lost or
// Routine.
func (c *Dir) Rotate(ctx context.Context, key crypto.PrivKey, next, reason string) (Rotation, error) {
	c.publish.Lock()
	defer c.publish.Unlock()
	raw, err := topics.RawPublicKey(key.GetPublic())
	if err != nil {
		return Rotation{}, err
	}
	ks := c.Log.KeyState(c.ID.RawKey)
	switch {
	case ks.Retired:
		return Rotation{}, ErrRetired
	case bytes.Equal(raw, ks.Current):
		return Rotation{}, ErrSpentPhrase
	case ks.Commitment == "":
		return Rotation{}, ErrNoCommitment
	case topics.Commitment(raw) != ks.Commitment:
		return Rotation{}, ErrWrongPhrase
	}
	heads, err := c.Log.OwnHeads(c.ID.RawKey)
	if err != nil {
		return Rotation{}, err
	}
	pub, err := crypto.MarshalPublicKey(key.GetPublic())
	if err != nil {
		return Rotation{}, err
	}
	// The node ID and the new key go to disk first: a crash after the log
	// took the rotate then leaves a dir that opens with the new key.
	if err := c.keepNodeID(); err != nil {
		return Rotation{}, err
	}
	b, err := encodeKey(key)
	if err != nil {
		return Rotation{}, err
	}
	if err := writeFileAtomic(filepath.Join(c.Path, nextKeyFile), b); err != nil {
		return Rotation{}, err
	}
	p, err := c.Log.Rotate(ctx, c.ID.RawKey, key, topics.Rotate{Key: pub, Next: next, Heads: heads, Reason: reason})
	// The log may have taken the rotation even so (a request cut off after
	// it was queued): installNextKey looks at the log, not at err.
	if ierr := c.installNextKey(); ierr != nil {
		return Rotation{}, errors.Join(err, ierr)
	}
	if err != nil && !bytes.Equal(c.Log.KeyState(c.ID.RawKey).Current, raw) {
		if errors.Is(err, feed.ErrNotCommitted) {
			err = ErrWrongPhrase
		}
		return Rotation{}, err
	}
	fp, err := topics.Fingerprint(key.GetPublic())
	return Rotation{Published: p, Heads: heads, Fingerprint: fp, Retired: next == ""}, err
}

// keepNodeID writes the node ID beside the key, once.
func (c *Dir) keepNodeID() error {
	if _, err := os.Stat(filepath.Join(c.Path, nodeIDFile)); err == nil {
		return nil
	}
	return writeNodeID(c.Path, c.ID.ID)
}

// writeNodeID writes the node ID a rotated dir keeps beside its key.
func writeNodeID(dir, id string) error {
	return writeFileAtomic(filepath.Join(dir, nodeIDFile), []byte(id+"\n"))
}

// installNextKey makes a rotation's key the dir's key if the log holds the
// rotate record that makes it the node's current key, and drops it
// otherwise (a rotation cut off before the log took it).
func (c *Dir) installNextKey() error {
	path := filepath.Join(c.Path, nextKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	k, err := decodeKey(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	raw, err := topics.RawPublicKey(k.GetPublic())
	if err != nil {
		return err
	}
	if !bytes.Equal(c.Log.KeyState(c.ID.RawKey).Current, raw) {
		return os.Remove(path)
	}
	if err := os.Rename(path, filepath.Join(c.Path, keyFile)); err != nil {
		return err
	}
	c.ID.setKey(k)
	return syncDir(c.Path)
}

// inception reads the node ID a rotated dir keeps; "" when the key file
// holds the inception key.
func inception(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, nodeIDFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return strings.TrimSpace(string(b)), err
}

// InitRecovered makes dir the data dir of an existing node whose key is
// lost: the node nodeID, with its recovery key as the key to sign with once
// a rotation (with the same key; reason lost) has made it current. A node
// running on the dir learns the node's chains from its peers first. dir
// must have no identity.
func InitRecovered(dir, nodeID string, key crypto.PrivKey) (*Identity, error) {
	raw, err := topics.NodeKey(nodeID)
	if err != nil {
		return nil, err
	}
	if newRaw, err := topics.RawPublicKey(key.GetPublic()); err != nil || bytes.Equal(newRaw, raw) {
		return nil, errors.Join(err, errors.New("the recovery key is the node's own key"))
	}
	if err := emptyDir(dir, "recover"); err != nil {
		return nil, err
	}
	if err := writeNodeID(dir, nodeID); err != nil {
		return nil, err
	}
	if err := writeKey(dir, key); err != nil {
		return nil, err
	}
	return LoadIdentity(dir)
}
