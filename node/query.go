package node

import (
	"context"
	"fmt"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// maxThingsScan bounds the Things one query examines, matching or not: a
// query with a rare tag returns a short page and a Next instead of reading
// the whole log.
const maxThingsScan = 2000

// Things answers a Things query from the log's latest state (see
// view.ThingsQuery), and one with text from the search index. Things whose
// every version is retracted are left out.
func (n *Node) Things(ctx context.Context, q view.ThingsQuery) (*view.ThingsPage, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	if q.Text != "" {
		return n.textThings(ctx, q)
	}
	var prefix []byte
	if q.Author != "" {
		raw, _ := topics.NodeKey(q.Author) // checked
		if !q.Tracker.IsZero() && !q.Tracker.OwnedBy(raw) {
			return &view.ThingsPage{Things: []view.ThingSummary{}}, nil
		}
		prefix = topics.OwnerPrefix(raw)
	}
	if !q.Tracker.IsZero() {
		prefix = q.Tracker[:]
	}
	var after *feed.ThingKey
	if tr, thing, ok, _ := q.AfterThing(); ok {
		after = &feed.ThingKey{Tracker: tr, Thing: thing}
	}
	page := &view.ThingsPage{Things: []view.ThingSummary{}}
	for scanned := 0; scanned < maxThingsScan && len(page.Things) < q.Limit; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// In batches: filters (and flags) may leave Things out.
		batch, err := n.Log.ThingsAfter(prefix, after, min(256, maxThingsScan-scanned))
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			return page, nil // the end: no Next
		}
		for _, s := range batch {
			scanned++
			after = &feed.ThingKey{Tracker: s.Tracker, Thing: s.Thing}
			sum, err := n.summary(s)
			if err != nil {
				return nil, err
			}
			if sum != nil && q.Match(sum.Thing) && (q.Flagged || !sum.Flags.Flagged) {
				page.Things = append(page.Things, *sum)
				if len(page.Things) == q.Limit {
					break
				}
			}
		}
	}
	page.Next = view.PageToken(after.Tracker, after.Thing)
	return page, nil
}

// summary describes a Thing by its latest version; nil when every version
// is retracted.
func (n *Node) summary(s *feed.ThingState) (*view.ThingSummary, error) {
	return datadir.Summarize(n.Log, n.book, s)
}

// maxThingVersions bounds the versions a ThingView shows, the newest.
const maxThingVersions = 1000

// Thing returns one Thing with its history, or an error wrapping
// view.ErrNotFound.
func (n *Node) Thing(_ context.Context, tracker topics.TrackerID, id string) (*view.Thing, error) {
	s, err := n.Log.Thing(tracker, id)
	if err != nil {
		return nil, err
	}
	v := &view.Thing{Tracker: tracker, ID: id}
	if lv := s.Latest(); lv != nil {
		v.Latest = lv.Version
	}
	versions := s.Versions
	if len(versions) > maxThingVersions {
		versions, v.Truncated = versions[len(versions)-maxThingVersions:], true
	}
	for _, vs := range versions {
		a, err := n.Log.Announcement(vs.Latest().Cursor)
		if err != nil {
			return nil, err
		}
		if a.Payload.Thing == nil {
			return nil, fmt.Errorf("announcement %s is not a Thing", vs.Latest().ID)
		}
		v.Author = a.Payload.Author
		vv := view.Version{Version: vs.Version, Parents: vs.Parents, Hidden: vs.Hidden(), Thing: a.Payload.Thing}
		for _, r := range vs.Announcements {
			vv.Announcements = append(vv.Announcements, datadir.ViewRef(r))
		}
		if r := vs.Retracted; r != nil {
			ref := datadir.ViewRef(*r)
			vv.Retracted = &ref
		}
		v.Versions = append(v.Versions, vv)
	}
	var anns []topics.ID
	for _, vv := range v.Versions {
		for _, r := range vv.Announcements {
			anns = append(anns, r.ID)
		}
	}
	v.Trust, v.Flags = n.TrustLevel(v.Author), datadir.ThingFlags(n.book, tracker, id, v.Author, anns...)
	return v, nil
}
