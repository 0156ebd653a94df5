package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
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
	// OnUnplaced, if set, is told of an announcement whose signer the log
	// could not place (feed.Unplaced).
	OnUnplaced func(*topics.Announcement)
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
	if err == nil && r.Status == feed.Unplaced && s.OnUnplaced != nil {
		s.OnUnplaced(a)
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
		if r.Status == feed.Unplaced && s.OnUnplaced != nil {
			s.OnUnplaced(anns[i])
		}
	}
	return out, nil
}

// Heads pages through the chains' heads, ordered by tracker ID bytes, then
// author key bytes; a page token is "tracker/author" of the last head of
// the previous page. A page is read from where the last one ended.
func (s LogStore) Heads(after string, limit int, trackers []topics.TrackerID) ([]gossip.Head, string, error) {
	limit = min(max(limit, 1), math.MaxInt-1)
	var from topics.TrackerID
	var fromAuthor []byte
	if after != "" {
		tr, author, ok := strings.Cut(after, "/")
		var err error
		if from, err = topics.ParseTrackerID(tr); err == nil && ok {
			fromAuthor, err = topics.NodeKey(author)
		}
		if err != nil || !ok {
			return nil, "", fmt.Errorf("page token %q: want tracker/author", after)
		}
	}
	var hs []feed.Head
	if len(trackers) == 0 {
		var err error
		if hs, err = s.Log.HeadsAfter(from, fromAuthor, limit+1); err != nil {
			return nil, "", err
		}
	} else {
		trackers = slices.Clone(trackers)
		slices.SortFunc(trackers, func(a, b topics.TrackerID) int { return bytes.Compare(a[:], b[:]) })
		trackers = slices.Compact(trackers)
		for _, t := range trackers {
			if len(hs) > limit {
				break
			}
			if fromAuthor != nil && bytes.Compare(t[:], from[:]) < 0 {
				continue
			}
			ths, err := s.Log.TrackerHeads(t)
			if err != nil {
				return nil, "", err
			}
			for _, h := range ths {
				if fromAuthor != nil && t == from && bytes.Compare(h.AuthorKey, fromAuthor) <= 0 {
					continue
				}
				hs = append(hs, h)
			}
		}
	}
	next := ""
	if len(hs) > limit {
		hs = hs[:limit]
		next = hs[limit-1].Tracker.String() + "/" + hs[limit-1].Author
	}
	out := make([]gossip.Head, len(hs))
	for i, h := range hs {
		out[i] = gossip.Head{Tracker: h.Tracker, Author: h.Author, AuthorKey: h.AuthorKey, Seq: h.Seq, ID: h.ID, Max: h.Max}
		for _, r := range h.Gaps {
			out[i].Gaps = append(out[i].Gaps, [2]uint64{r.From, r.To})
		}
	}
	return out, next, nil
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
