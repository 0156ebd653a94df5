package datadir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The files of a data dir. This package is the only one that names them;
// the small state files are written atomically (a temporary file renamed
// over it, synced), readable by the owner only.
const (
	keyFile       = "identity.key"      // the node's private key, PEM
	logDir        = "log"               // the Pebble log
	indexDir      = "index"             // the full-text index (package search), rebuildable from the log
	lockFile      = "lock"              // held by the process that owns the dir
	ConfigFile    = "config"            // the default configuration file
	followsFile   = "follows"           // the trackers and nodes this node follows
	announcedFile = "announced"         // the last own entry announced to the network
	peersFile     = "peers"             // members to rejoin after a restart
	cursorFile    = "subscriber-cursor" // the last entry the subscriber printed
)

// IndexPath returns where the dir's full-text index lives.
func (c *Dir) IndexPath() string { return filepath.Join(c.Path, indexDir) }

// writeFileAtomic replaces path with b.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := writeTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*", b)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes b to a new file in dir, named after pattern (as
// os.CreateTemp names it), with mode 0600 and synced to disk, and returns
// its path for the caller to move into place.
func writeTemp(dir, pattern string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	err = privateFile(f)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// readCursor reads a cursor file; a missing file is cursor 0.
func readCursor(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	c, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: not a cursor", path)
	}
	return c, nil
}

func writeCursor(path string, c uint64) error {
	return writeFileAtomic(path, []byte(strconv.FormatUint(c, 10)+"\n"))
}

// ReadSubscriberCursor returns the last cursor the subscriber printed from
// dir (0 if none).
func ReadSubscriberCursor(dir string) (uint64, error) {
	return readCursor(filepath.Join(dir, cursorFile))
}

// WriteSubscriberCursor records the last cursor the subscriber printed.
func WriteSubscriberCursor(dir string, c uint64) error {
	return writeCursor(filepath.Join(dir, cursorFile), c)
}

// ReadAnnounced returns the cursor of the last own entry the node announced
// to the network (0 if none).
func ReadAnnounced(dir string) (uint64, error) {
	return readCursor(filepath.Join(dir, announcedFile))
}

// WriteAnnounced records the last own entry announced.
func WriteAnnounced(dir string, c uint64) error {
	return writeCursor(filepath.Join(dir, announcedFile), c)
}

// Peers keeps the gossip addresses of members last seen alive, to rejoin
// them after a restart (DIR/peers). It satisfies gossip's PeerStore.
type Peers struct{ Dir string }

// peersDoc is the format of DIR/peers.
type peersDoc struct {
	Members []string `json:"members"` // gossip HOST:PORT
}

// LoadPeers returns the saved addresses; none when there is no file.
func (p Peers) LoadPeers() ([]string, error) {
	var d peersDoc
	err := readJSON(filepath.Join(p.Dir, peersFile), &d)
	return d.Members, err
}

// SavePeers replaces the saved addresses.
func (p Peers) SavePeers(addrs []string) error {
	return writeJSON(filepath.Join(p.Dir, peersFile), peersDoc{Members: addrs})
}

// readJSON decodes the JSON file at path into v; a missing file leaves v
// as it is.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeJSON replaces the file at path by v in JSON.
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b)
}

// CheckPrivate refuses a secret file (a key, a keyring) that others can
// read or write: on Unix by its mode, as ssh does; on Windows by its access
// list, where mode bits mean nothing.
func CheckPrivate(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return checkPrivate(path, st)
}
