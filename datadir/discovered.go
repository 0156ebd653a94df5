package datadir

import (
	"cmp"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// Discoveries is the listening-mode list (DESIGN.md, "Trust"): the
// trackers a node learnt of from discovery records, with their owners, kept
// (bounded, in DIR/discovered) so that a user can review them and follow or
// dismiss each. Its methods may be called concurrently.
type Discoveries struct {
	path string

	mu        sync.Mutex
	seen      map[topics.TrackerID]*Discovery
	dismissed map[string]time.Time // tracker or node IDs, when dismissed
	dirty     bool
}

// Discovery is one tracker seen on the network.
type Discovery struct {
	Tracker topics.TrackerID `json:"tracker"`
	Owner   string           `json:"owner"`
	Title   string           `json:"title,omitempty"`
	First   time.Time        `json:"first_seen"`
	Last    time.Time        `json:"last_seen"`
}

// MaxDiscoveries bounds the list, and the dismissals: past it the tracker
// seen longest ago (the dismissal made longest ago) is forgotten.
const MaxDiscoveries = 10000

const discoveredFile = "discovered"

// discoveredDoc is the file's shape.
type discoveredDoc struct {
	Seen      []*Discovery         `json:"seen"`
	Dismissed map[string]time.Time `json:"dismissed,omitempty"`
}

// OpenDiscoveries reads the list of the dir at path.
func OpenDiscoveries(path string) (*Discoveries, error) {
	d := &Discoveries{path: filepath.Join(path, discoveredFile), seen: make(map[topics.TrackerID]*Discovery),
		dismissed: make(map[string]time.Time)}
	var doc discoveredDoc
	if err := readJSON(d.path, &doc); err != nil {
		return nil, err
	}
	for _, s := range doc.Seen {
		d.seen[s.Tracker] = s
	}
	for id, at := range doc.Dismissed {
		d.dismissed[id] = at
	}
	return d, nil
}

// Seen records a discovery record's tracker, seen at now.
func (d *Discoveries) Seen(r topics.Discovery, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.seen[r.Tracker]
	if s == nil {
		if len(d.seen) >= MaxDiscoveries {
			d.forgetOldest()
		}
		s = &Discovery{Tracker: r.Tracker, Owner: r.Owner, First: now}
		d.seen[r.Tracker] = s
	}
	s.Title, s.Last = r.Title, now
	d.dirty = true
}

// forgetOldest drops the tenth of the list seen longest ago, so that a
// flood of new trackers costs one sort per MaxDiscoveries/10 of them.
func (d *Discoveries) forgetOldest() {
	all := make([]*Discovery, 0, len(d.seen))
	for _, s := range d.seen {
		all = append(all, s)
	}
	slices.SortFunc(all, func(a, b *Discovery) int { return a.Last.Compare(b.Last) })
	for _, s := range all[:max(1, len(all)/10)] {
		delete(d.seen, s.Tracker)
	}
}

// Dismiss takes trackers (by ID) or nodes (by node ID: all their
// trackers) off the list for good.
func (d *Discoveries) Dismiss(ids []string, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		if len(d.dismissed) >= MaxDiscoveries { // forget the oldest tenth
			ids := slices.SortedFunc(maps.Keys(d.dismissed), func(a, b string) int { return d.dismissed[a].Compare(d.dismissed[b]) })
			for _, old := range ids[:len(ids)/10] {
				delete(d.dismissed, old)
			}
		}
		d.dismissed[id] = now
	}
	d.dirty = true
}

// List returns the trackers seen, but those dismissed (or whose owner is)
// and those skip names (followed), the most recently seen first.
func (d *Discoveries) List(skip func(topics.TrackerID) bool) []Discovery {
	d.mu.Lock()
	out := make([]Discovery, 0, len(d.seen))
	for t, s := range d.seen {
		_, gone := d.dismissed[t.String()]
		_, ownerGone := d.dismissed[s.Owner]
		if !gone && !ownerGone {
			out = append(out, *s)
		}
	}
	d.mu.Unlock()
	out = slices.DeleteFunc(out, func(s Discovery) bool { return skip != nil && skip(s.Tracker) })
	slices.SortFunc(out, func(a, b Discovery) int {
		return cmp.Or(b.Last.Compare(a.Last), slices.Compare(a.Tracker[:], b.Tracker[:]))
	})
	return out
}

// Len returns how many trackers the list holds, dismissed or not.
func (d *Discoveries) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}

// Save writes the list if it changed since it was read or last saved.
func (d *Discoveries) Save() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.dirty {
		return nil
	}
	doc := discoveredDoc{Seen: make([]*Discovery, 0, len(d.seen)), Dismissed: d.dismissed}
	for _, s := range d.seen {
		doc.Seen = append(doc.Seen, s)
	}
	slices.SortFunc(doc.Seen, func(a, b *Discovery) int { return slices.Compare(a.Tracker[:], b.Tracker[:]) })
	if err := writeJSON(d.path, doc); err != nil {
		return err
	}
	d.dirty = false
	return nil
}

// ViewDiscovered shows the list with each owner's level by book.
func ViewDiscovered(ds []Discovery, b *Book) []view.Discovered {
	out := make([]view.Discovered, len(ds))
	for i, d := range ds {
		out[i] = view.Discovered{Tracker: d.Tracker, Node: d.Owner, Title: d.Title, Level: string(b.Level(d.Owner).Level),
			First: topics.FormatTime(d.First), Last: topics.FormatTime(d.Last)}
	}
	return out
}

// CheckDismiss refuses what is neither a tracker ID nor a node ID.
func CheckDismiss(ids []string) error {
	for _, id := range ids {
		if _, err := topics.ParseTrackerID(id); err == nil {
			continue
		}
		if _, err := topics.NodeKey(id); err != nil {
			return fmt.Errorf("dismiss %q: neither a tracker ID nor a node ID", id)
		}
	}
	return nil
}
