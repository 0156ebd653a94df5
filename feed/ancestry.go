package feed

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/thingtracker/ttn/topics"
)

// Ancestry: a Thing version names what it derives from (topics.Parent); the
// log indexes the other direction, what derives from a Thing, under
//
//	a parentTracker(16) parentThing childTracker(16) childThing childVersion → id(32) seq(8) parentVersion
//
// (strings uvarint-length-prefixed), written blind with the child's Thing
// row and deleted when a key rotation voids the child.

// Derived is one Thing version that names a Thing as its parent.
type Derived struct {
	Tracker       topics.TrackerID `json:"tracker"`
	Thing         string           `json:"thing"`
	Version       string           `json:"version"`
	ID            topics.ID        `json:"id"`                       // the announcement (latest edit seen) naming the parent
	ParentVersion string           `json:"parent_version,omitempty"` // the parent's version it names, "" for any
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// derivedPrefix is the prefix of the keys of what derives from a Thing.
func derivedPrefix(tracker topics.TrackerID, thing string) []byte {
	return appendString(append([]byte{prefixDerived}, tracker[:]...), thing)
}

func derivedKey(parent topics.TrackerID, thing string, child topics.TrackerID, childThing, version string) []byte {
	return appendString(appendString(append(derivedPrefix(parent, thing), child[:]...), childThing), version)
}

// parentTracker is the tracker a parent names: its own, or the child's.
func parentTracker(p topics.Parent, child topics.TrackerID) topics.TrackerID {
	if p.Tracker.IsZero() {
		return child
	}
	return p.Tracker
}

// putDerived indexes a Thing announcement under each parent it names.
func (t *txn) putDerived(a *topics.Announcement) error {
	p := a.Payload
	for _, par := range p.Thing.Parents {
		v := append(binary.BigEndian.AppendUint64(append([]byte(nil), a.ID[:]...), p.Seq), par.Version...)
		if err := t.b.Set(derivedKey(parentTracker(par, p.Tracker), par.Thing, p.Tracker, p.Thing.ID, p.Thing.Version), v, nil); err != nil {
			return err
		}
	}
	return nil
}

// dropDerived takes a voided Thing announcement out of the index, unless a
// later edit of its version is what the index holds.
func (t *txn) dropDerived(a *topics.Announcement) error {
	p := a.Payload
	for _, par := range p.Thing.Parents {
		k := derivedKey(parentTracker(par, p.Tracker), par.Thing, p.Tracker, p.Thing.ID, p.Thing.Version)
		v, err := t.get(k)
		if err != nil {
			return err
		}
		if len(v) >= 32 && topics.ID(v[:32]) == a.ID {
			if err := t.b.Delete(k, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// DerivedFrom returns the Thing versions that name the Thing (tracker, id)
// as a parent, across trackers, in key order.
func (l *Log) DerivedFrom(tracker topics.TrackerID, id string) ([]Derived, error) {
	var out []Derived
	prefix := derivedPrefix(tracker, id)
	err := l.view(func() error {
		return l.scan(prefix, nil, func(k, v []byte) (bool, error) {
			d, err := parseDerived(k[len(prefix):], v)
			out = append(out, d)
			return err == nil, err
		})
	})
	return out, err
}

func parseDerived(rest, v []byte) (Derived, error) {
	var d Derived
	if len(rest) < 16 || len(v) < 40 {
		return d, fmt.Errorf("feed: bad ancestry record")
	}
	d.Tracker, rest = topics.TrackerID(rest[:16]), rest[16:]
	var ok1, ok2 bool
	d.Thing, ok1 = cutString(&rest)
	d.Version, ok2 = cutString(&rest)
	if !ok1 || !ok2 || len(rest) != 0 {
		return d, fmt.Errorf("feed: bad ancestry record")
	}
	d.ID, d.ParentVersion = topics.ID(v[:32]), string(v[40:])
	return d, nil
}

// ancestryIndexed marks a log whose Thing rows are all in the ancestry
// index (one written before the index existed is indexed once, at Open).
var ancestryIndexed = []byte{prefixMeta, 'a', 'n', 'c', 'e', 's', 't', 'r', 'y'}

// indexAncestry indexes, once, the parents named by the Thing rows of a
// log written before the index existed.
func (l *Log) indexAncestry() error {
	done, err := l.get(ancestryIndexed)
	if err != nil || done != nil || l.last == 0 {
		return err // a new log: its first commit marks it (writeMarks)
	}
	b := l.db.NewBatch()
	defer b.Close()
	err = l.scan([]byte{prefixThing}, nil, func(k, v []byte) (bool, error) {
		thing, version, seq, err := parseThingVersionKey(k)
		if err != nil {
			return false, err
		}
		ref, parents, err := decodeRef(v, seq)
		if err != nil {
			return false, err
		}
		tracker := topics.TrackerID(k[1 : 1+16])
		for _, par := range parents {
			val := append(binary.BigEndian.AppendUint64(bytes.Clone(ref.ID[:]), seq), par.Version...)
			if err := b.Set(derivedKey(parentTracker(par, tracker), par.Thing, tracker, thing, version), val, nil); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("feed: indexing ancestry: %w", err)
	}
	if err := b.Set(ancestryIndexed, []byte{1}, nil); err != nil {
		return err
	}
	return l.db.Apply(b, pebble.Sync)
}
