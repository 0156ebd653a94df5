package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/thingtracker/ttn/topics"
)

// Small state files of a data dir, besides the key and the log. Each is
// written atomically (a temporary file renamed over it), mode 0600.
const (
	followsFile   = "follows"           // the trackers this node follows
	announcedFile = "announced"         // the last own entry announced to the network
	peersFile     = "peers"             // members to rejoin after a restart
	cursorFile    = "subscriber-cursor" // the last entry the subscriber printed
)

// writeFileAtomic replaces path with b.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
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

// follows is the set of trackers a node follows, kept in DIR/follows.
type follows struct {
	path string

	mu  sync.Mutex
	set map[topics.TrackerID]struct{}
}

type followsJSON struct {
	Trackers []topics.TrackerID `json:"trackers"`
}

func loadFollows(dir string) (*follows, error) {
	f := &follows{path: filepath.Join(dir, followsFile), set: make(map[topics.TrackerID]struct{})}
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	var fj followsJSON
	if err := json.Unmarshal(b, &fj); err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	for _, t := range fj.Trackers {
		f.set[t] = struct{}{}
	}
	return f, nil
}

// list returns the followed trackers, sorted.
func (f *follows) list() []topics.TrackerID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listLocked()
}

func (f *follows) listLocked() []topics.TrackerID {
	out := make([]topics.TrackerID, 0, len(f.set))
	for t := range f.set {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b topics.TrackerID) int { return slices.Compare(a[:], b[:]) })
	return out
}

func (f *follows) has(t topics.TrackerID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.set[t]
	return ok
}

// change adds and removes trackers and saves the set if it changed.
func (f *follows) change(add, remove []topics.TrackerID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	changed := false
	for _, t := range add {
		if _, ok := f.set[t]; !ok {
			f.set[t] = struct{}{}
			changed = true
		}
	}
	for _, t := range remove {
		if _, ok := f.set[t]; ok {
			delete(f.set, t)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	b, err := json.Marshal(followsJSON{Trackers: f.listLocked()})
	if err != nil {
		return err
	}
	return writeFileAtomic(f.path, b)
}

// Follows returns the trackers a data dir follows, as stored.
func Follows(dir string) ([]topics.TrackerID, error) {
	f, err := loadFollows(dir)
	if err != nil {
		return nil, err
	}
	return f.list(), nil
}

// ChangeFollows adds and removes trackers in a data dir's stored follows,
// for when no node runs on it.
func ChangeFollows(dir string, add, remove []topics.TrackerID) error {
	f, err := loadFollows(dir)
	if err != nil {
		return err
	}
	return f.change(add, remove)
}
