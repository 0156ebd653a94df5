package datadir

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/topics"
)

const pemType = "TTN NODE KEY" // a libp2p-marshalled private key

// ErrNoIdentity is returned when a data dir has no key.
var ErrNoIdentity = errors.New("datadir: no identity")

// Identity is a node's key and what is derived from it. The key is never
// logged or printed.
type Identity struct {
	// Key is the signing key the dir held when it was opened: the node's
	// libp2p identity. After a rotation it is not the inception key.
	Key         crypto.PrivKey
	RawKey      []byte // the raw 32-byte public inception key, which ID embeds
	ID          string // the node ID: the libp2p peer ID of the inception key, 12D3KooW…
	Fingerprint string // the inception key's, what people compare out of band

	mu     sync.Mutex
	signer crypto.PrivKey // the current signing key, once rotated since opening
}

// Signer returns the key that signs for the node now.
func (id *Identity) Signer() crypto.PrivKey {
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.signer != nil {
		return id.signer
	}
	return id.Key
}

func (id *Identity) setKey(k crypto.PrivKey) {
	id.mu.Lock()
	id.signer = k
	id.mu.Unlock()
}

func newIdentity(k crypto.PrivKey) (*Identity, error) {
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("key type %s: only Ed25519 keys are supported", k.Type())
	}
	raw, err := topics.RawPublicKey(k.GetPublic())
	if err != nil {
		return nil, err
	}
	id, err := topics.NodeID(k.GetPublic())
	if err != nil {
		return nil, err
	}
	fp, err := topics.Fingerprint(k.GetPublic())
	if err != nil {
		return nil, err
	}
	return &Identity{Key: k, RawKey: raw, ID: id, Fingerprint: fp}, nil
}

// NodeTracker returns the ID of the node's own tracker (name "").
func (id *Identity) NodeTracker() topics.TrackerID { return topics.DeriveTrackerID(id.RawKey, "") }

// InitIdentity creates dir (mode 0700) and a new key in it (mode 0600) if
// it has none. It returns the identity and whether it was created; an
// existing key is kept.
func InitIdentity(dir string) (*Identity, bool, error) {
	if err := makePrivate(dir); err != nil {
		return nil, false, err
	}
	id, err := LoadIdentity(dir)
	if err == nil {
		return id, false, nil
	}
	if !errors.Is(err, ErrNoIdentity) {
		return nil, false, err
	}
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, false, err
	}
	if err := writeKey(dir, k); err != nil {
		return nil, false, err
	}
	id, err = newIdentity(k)
	return id, err == nil, err
}

// LoadIdentity reads the key of dir. It refuses a key file that others can
// read, as ssh does.
func LoadIdentity(dir string) (*Identity, error) {
	path := filepath.Join(dir, keyFile)
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s (run 'announcer init --data %s')", ErrNoIdentity, dir, dir)
	}
	if err != nil {
		return nil, err
	}
	if err := checkPrivate(path, st); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := decodeKey(b)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	id, err := newIdentity(k)
	if err != nil {
		return nil, err
	}
	// A rotated node: the key is not the one its ID embeds.
	nodeID, err := inception(dir)
	if err != nil || nodeID == "" {
		return id, err
	}
	raw, err := topics.NodeKey(nodeID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, nodeIDFile), err)
	}
	pub, err := crypto.UnmarshalEd25519PublicKey(raw)
	if err != nil {
		return nil, err
	}
	if id.Fingerprint, err = topics.Fingerprint(pub); err != nil {
		return nil, err
	}
	id.ID, id.RawKey = nodeID, raw
	return id, nil
}

func decodeKey(b []byte) (crypto.PrivKey, error) {
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != pemType || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("not a %q PEM block", pemType)
	}
	k, err := crypto.UnmarshalPrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("bad key: %w", err)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("key type %s: only Ed25519 keys are supported", k.Type())
	}
	return k, nil
}

func encodeKey(k crypto.PrivKey) ([]byte, error) {
	b, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: b}), nil
}

// writeKey writes k to dir atomically with mode 0600; it never replaces an
// existing key.
func writeKey(dir string, k crypto.PrivKey) error {
	b, err := encodeKey(k)
	if err != nil {
		return err
	}
	tmp, err := writeTemp(dir, ".key-*", b)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	// Link, not rename: it fails if a key appeared meanwhile.
	if err := os.Link(tmp, filepath.Join(dir, keyFile)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already has an identity", dir)
		}
		return err
	}
	return syncDir(dir)
}

// ExportKey writes the key of dir to w in the PEM form ImportKey reads.
func ExportKey(dir string, w io.Writer) error {
	id, err := LoadIdentity(dir)
	if err != nil {
		return err
	}
	b, err := encodeKey(id.Key)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// ImportKey installs the key read from r (as ExportKey writes it) in dir,
// which must not have one: replacing a key would change the node's identity
// and orphan its trackers.
func ImportKey(dir string, r io.Reader) (*Identity, error) {
	b, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return nil, err
	}
	k, err := decodeKey(b)
	if err != nil {
		return nil, fmt.Errorf("import key: %w", err)
	}
	if err := emptyDir(dir, "import"); err != nil {
		return nil, err
	}
	if err := writeKey(dir, k); err != nil {
		return nil, err
	}
	return newIdentity(k)
}

// emptyDir makes dir (private) for an identity to come, refusing one that
// has an identity already: to do what, into an empty data dir.
func emptyDir(dir, what string) error {
	if _, err := LoadIdentity(dir); err == nil {
		return fmt.Errorf("%s already has an identity; %s into an empty data dir", dir, what)
	} else if !errors.Is(err, ErrNoIdentity) {
		return err
	}
	return makePrivate(dir)
}
