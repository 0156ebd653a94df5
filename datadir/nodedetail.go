package datadir

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// NodeDetail tells everything the dir holds about a node, by book: its
// profile, trackers and follows from its latest node record, its
// fingerprint, its level and why, the trust records it gave and received
// and the flags it made and received. It reads every standing record.
func (c *Dir) NodeDetail(ctx context.Context, b *Book, id string) (*view.NodeDetail, error) {
	raw, err := topics.NodeKey(id)
	if err != nil {
		return nil, err
	}
	d := &view.NodeDetail{ID: id, Fingerprint: topics.FingerprintOf(raw), Trust: ViewVerdict(b.Level(id)),
		Blocked: slices.Contains(b.Blocked(), id), Trackers: []topics.TrackerID{},
		TrustGiven: []view.TrustBy{}, TrustReceived: []view.TrustBy{}, FlagsMade: b.FlagsMade(id),
		Flags: b.Flags(topics.FlagTarget{Node: id}.Key())}
	if err := c.nodeRecord(topics.DeriveTrackerID(raw, ""), d); err != nil {
		return nil, err
	}
	d.Commitment, d.Key = c.KeyView(raw)
	err = c.Log.Records(ctx, func(a *topics.Announcement) error {
		t := a.Payload.Trust
		if t == nil || (a.Payload.Author != id && t.Subject != id) {
			return nil
		}
		by := view.TrustBy{Author: a.Payload.Author, Subject: t.Subject, Level: t.Level, Note: t.Note, ID: a.ID}
		if by.Author == id {
			d.TrustGiven = append(d.TrustGiven, by)
		} else {
			d.TrustReceived = append(d.TrustReceived, by)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(d.TrustGiven, func(x, y view.TrustBy) int { return strings.Compare(x.Subject, y.Subject) })
	slices.SortFunc(d.TrustReceived, func(x, y view.TrustBy) int { return strings.Compare(x.Author, y.Author) })
	return d, nil
}

// nodeRecord fills d from the latest node record held on node tracker nt.
func (c *Dir) nodeRecord(nt topics.TrackerID, d *view.NodeDetail) error {
	st, err := c.Log.Tracker(nt)
	if errors.Is(err, feed.ErrNotFound) || (err == nil && st.Info == nil) {
		return nil
	}
	if err != nil {
		return err
	}
	a, err := c.Log.Announcement(st.Info.Cursor)
	if err != nil {
		return err
	}
	info := a.Payload.NodeInfo
	if info == nil {
		return fmt.Errorf("node record %s: no node_info", a.ID)
	}
	d.Name, d.Description, d.URL, d.Follows = info.Name, info.Description, info.URL, info.Follows
	d.Trackers = append(d.Trackers, info.Trackers...)
	d.Record = &view.Ref{ID: a.ID, Seq: a.Payload.Seq, Cursor: st.Info.Cursor}
	return nil
}
