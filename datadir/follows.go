package datadir

import (
	"path/filepath"
	"slices"
	"sync"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// FollowSet is what a node follows (see view.FollowSet).
type FollowSet = view.FollowSet

// Follows is a node's FollowSet, kept in DIR/follows. Its methods may be
// called concurrently; Change writes the file before it returns.
type Follows struct {
	path string

	mu       sync.Mutex
	trackers map[topics.TrackerID]struct{}
	nodes    map[string]struct{}
}

// LoadFollows reads dir's follows (none when there is no file).
func LoadFollows(dir string) (*Follows, error) {
	f := &Follows{path: filepath.Join(dir, followsFile), trackers: make(map[topics.TrackerID]struct{}), nodes: make(map[string]struct{})}
	var fs FollowSet
	if err := readJSON(f.path, &fs); err != nil {
		return nil, err
	}
	for _, t := range fs.Trackers {
		f.trackers[t] = struct{}{}
	}
	for _, n := range fs.Nodes {
		f.nodes[n] = struct{}{}
	}
	return f, nil
}

// Get returns the follow set, sorted.
func (f *Follows) Get() FollowSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.getLocked()
}

func (f *Follows) getLocked() FollowSet {
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

// Trackers returns the followed trackers, sorted.
func (f *Follows) Trackers() []topics.TrackerID { return f.Get().Trackers }

// HasNode reports whether the node id is followed.
func (f *Follows) HasNode(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.nodes[id]
	return ok
}

// Has reports whether the tracker t is followed.
func (f *Follows) Has(t topics.TrackerID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.trackers[t]
	return ok
}

// Change adds and removes trackers and nodes, and saves the set if it
// changed.
func (f *Follows) Change(add, remove FollowSet) error {
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
	return writeJSON(f.path, f.getLocked())
}

// ReadFollows returns what a data dir follows, as stored.
func ReadFollows(dir string) (FollowSet, error) {
	f, err := LoadFollows(dir)
	if err != nil {
		return FollowSet{}, err
	}
	return f.Get(), nil
}

// ChangeFollows adds to and removes from a data dir's stored follows, for
// when no node runs on it.
func ChangeFollows(dir string, add, remove FollowSet) error {
	f, err := LoadFollows(dir)
	if err != nil {
		return err
	}
	return f.Change(add, remove)
}
