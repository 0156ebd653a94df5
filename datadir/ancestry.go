package datadir

import (
	"errors"
	"slices"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// Ancestry returns what the Thing (tracker, id) derives from, version by
// version, and what derives from it, or an error wrapping view.ErrNotFound
// when the log holds no such Thing.
func (c *Dir) Ancestry(tracker topics.TrackerID, id string) (*view.Ancestry, error) {
	s, err := c.Log.Thing(tracker, id)
	if err != nil {
		return nil, err
	}
	out := &view.Ancestry{Tracker: tracker, Thing: id, Parents: []view.AncestryParent{}, Children: []view.AncestryChild{}}
	for _, v := range s.Versions {
		for _, p := range v.Parents {
			if p.Tracker.IsZero() {
				p.Tracker = tracker
			}
			ap := view.AncestryParent{Version: v.Version, Parent: p}
			ps, err := c.Log.Thing(p.Tracker, p.Thing)
			switch {
			case errors.Is(err, feed.ErrNotFound):
			case err != nil:
				return nil, err
			default:
				ap.Held = p.Version == "" || slices.ContainsFunc(ps.Versions, func(v feed.VersionState) bool { return v.Version == p.Version })
				if ap.Title, err = c.title(ps); err != nil {
					return nil, err
				}
			}
			out.Parents = append(out.Parents, ap)
		}
	}
	ds, err := c.Log.DerivedFrom(tracker, id)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		ch := view.AncestryChild{Tracker: d.Tracker, Thing: d.Thing, Version: d.Version, Announcement: d.ID, ParentVersion: d.ParentVersion}
		if cs, err := c.Log.Thing(d.Tracker, d.Thing); err == nil {
			if ch.Title, err = c.title(cs); err != nil {
				return nil, err
			}
		}
		out.Children = append(out.Children, ch)
	}
	return out, nil
}

// title returns the title of a Thing's latest version ("" when every
// version is retracted).
func (c *Dir) title(s *feed.ThingState) (string, error) {
	v := s.Latest()
	if v == nil {
		return "", nil
	}
	a, err := c.Log.Announcement(v.Latest().Cursor)
	if err != nil || a.Payload.Thing == nil {
		return "", err
	}
	return a.Payload.Thing.Title, nil
}
