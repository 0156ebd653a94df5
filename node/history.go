package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/topics"
)

// LogStore is the log as the network's Store and History. OnGap, if set,
// is told of chains that miss entries, to repair them.
type LogStore struct {
	Log   *feed.Log
	OnGap func(topics.TrackerID)
}

var (
	_ gossip.Store        = LogStore{}
	_ gossip.History      = LogStore{}
	_ gossip.ChainScanner = LogStore{}
)

func (s LogStore) Has(id topics.ID) (bool, error) { return s.Log.Has(id) }

// A live announcement the log cannot store for want of disk space is
// ignored (not forwarded), without an error: the log said so once, and
// anti-entropy brings it back once space is freed.
func (s LogStore) Append(ctx context.Context, a *topics.Announcement) (topics.Outcome, error) {
	r, err := s.Log.Append(ctx, a)
	if errors.Is(err, feed.ErrDiskFull) {
		return topics.Ignore, nil
	}
	if err == nil && r.Gaps && s.OnGap != nil {
		s.OnGap(a.Payload.Tracker)
	}
	return r.Status.Outcome(), err
}

func (s LogStore) AppendAll(ctx context.Context, anns []*topics.Announcement) ([]topics.Outcome, error) {
	rs, err := s.Log.AppendAll(ctx, anns)
	if err != nil {
		return nil, err
	}
	out := make([]topics.Outcome, len(rs))
	for i, r := range rs {
		out[i] = r.Status.Outcome()
	}
	return out, nil
}

// Heads pages through the chains' heads. A page token is "tracker/author".
func (s LogStore) Heads(after string, limit int, trackers []topics.TrackerID) ([]gossip.Head, string, error) {
	var all []feed.Head
	if len(trackers) == 0 {
		hs, err := s.Log.Heads()
		if err != nil {
			return nil, "", err
		}
		all = hs
	} else {
		for _, t := range trackers {
			hs, err := s.Log.TrackerHeads(t)
			if err != nil {
				return nil, "", err
			}
			all = append(all, hs...)
		}
	}
	token := func(h feed.Head) string { return h.Tracker.String() + "/" + h.Author }
	slices.SortFunc(all, func(a, b feed.Head) int { return strings.Compare(token(a), token(b)) })
	var out []gossip.Head
	for _, h := range all {
		if after != "" && token(h) <= after {
			continue
		}
		if len(out) == limit {
			return out, fmt.Sprintf("%s/%s", out[len(out)-1].Tracker, out[len(out)-1].Author), nil
		}
		g := gossip.Head{Tracker: h.Tracker, Author: h.Author, AuthorKey: h.AuthorKey, Seq: h.Seq, ID: h.ID, Max: h.Max}
		for _, r := range h.Gaps {
			g.Gaps = append(g.Gaps, [2]uint64{r.From, r.To})
		}
		out = append(out, g)
	}
	return out, "", nil
}

func (s LogStore) Chain(tracker topics.TrackerID, author []byte, from uint64, limit int) ([]gossip.ChainEnvelope, error) {
	es, err := s.Log.Chain(tracker, author, from, limit)
	if err != nil {
		return nil, err
	}
	out := make([]gossip.ChainEnvelope, len(es))
	for i, e := range es {
		out[i] = gossip.ChainEnvelope{Seq: e.Seq, Variant: e.Variant, Envelope: e.Envelope}
	}
	return out, nil
}

// ScanChain walks a chain without copying it (see gossip.ChainScanner).
func (s LogStore) ScanChain(tracker topics.TrackerID, author []byte, from uint64, fn func(seq uint64, variant byte, envelope []byte) bool) error {
	return s.Log.ScanChain(tracker, author, from, fn)
}
