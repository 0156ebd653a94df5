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
	err = f.Chmod(0o600)
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

// FollowSet is what a node follows: trackers, and nodes (whose node
// tracker, and every tracker it lists, it follows).
type FollowSet struct {
	Trackers []topics.TrackerID `json:"trackers"`
	Nodes    []string           `json:"nodes,omitempty"` // node IDs
}

// follows is a node's FollowSet, kept in DIR/follows.
type follows struct {
	path string

	mu       sync.Mutex
	trackers map[topics.TrackerID]struct{}
	nodes    map[string]struct{}
}

func loadFollows(dir string) (*follows, error) {
	f := &follows{path: filepath.Join(dir, followsFile), trackers: make(map[topics.TrackerID]struct{}), nodes: make(map[string]struct{})}
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	var fs FollowSet
	if err := json.Unmarshal(b, &fs); err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	for _, t := range fs.Trackers {
		f.trackers[t] = struct{}{}
	}
	for _, n := range fs.Nodes {
		f.nodes[n] = struct{}{}
	}
	return f, nil
}

// get returns the follow set, sorted.
func (f *follows) get() FollowSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.getLocked()
}

func (f *follows) getLocked() FollowSet {
	var fs FollowSet
	for t := range f.trackers {
		fs.Trackers = append(fs.Trackers, t)
	}
	slices.SortFunc(fs.Trackers, func(a, b topics.TrackerID) int { return slices.Compare(a[:], b[:]) })
	for n := range f.nodes {
		fs.Nodes = append(fs.Nodes, n)
	}
	slices.Sort(fs.Nodes)
	return fs
}

// list returns the followed trackers, sorted.
func (f *follows) list() []topics.TrackerID { return f.get().Trackers }

func (f *follows) hasNode(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.nodes[id]
	return ok
}

func (f *follows) has(t topics.TrackerID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.trackers[t]
	return ok
}

// change adds and removes trackers and nodes, and saves the set if it
// changed.
func (f *follows) change(add, remove FollowSet) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	changed := false
	for _, t := range add.Trackers {
		if _, ok := f.trackers[t]; !ok {
			f.trackers[t], changed = struct{}{}, true
		}
	}
	for _, n := range add.Nodes {
		if _, ok := f.nodes[n]; !ok {
			f.nodes[n], changed = struct{}{}, true
		}
	}
	for _, t := range remove.Trackers {
		if _, ok := f.trackers[t]; ok {
			delete(f.trackers, t)
			changed = true
		}
	}
	for _, n := range remove.Nodes {
		if _, ok := f.nodes[n]; ok {
			delete(f.nodes, n)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	b, err := json.Marshal(f.getLocked())
	if err != nil {
		return err
	}
	return writeFileAtomic(f.path, b)
}

// Follows returns what a data dir follows, as stored.
func Follows(dir string) (FollowSet, error) {
	f, err := loadFollows(dir)
	if err != nil {
		return FollowSet{}, err
	}
	return f.get(), nil
}

// ChangeFollows adds to and removes from a data dir's stored follows, for
// when no node runs on it.
func ChangeFollows(dir string, add, remove FollowSet) error {
	f, err := loadFollows(dir)
	if err != nil {
		return err
	}
	return f.change(add, remove)
}
