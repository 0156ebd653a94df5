package node

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/topics"
)

// TestHeadsPages: inventory pages, read from where the last one ended, give
// every head once, in tracker-then-author byte order, with a tracker filter
// or without; a token that is not one is refused.
func TestHeadsPages(t *testing.T) {
	l, err := feed.Open(filepath.Join(t.TempDir(), "log"), feed.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var trackers []topics.TrackerID
	for range 5 {
		key, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"one", "two"} {
			anns := chain(t, key, name, 2, "a")
			appendAll(t, l, anns)
			trackers = append(trackers, anns[0].Payload.Tracker)
		}
	}
	s := LogStore{Log: l}
	all, next, err := s.Heads("", 1000, nil)
	if err != nil || next != "" || len(all) != 10 {
		t.Fatalf("one page: %d heads, next %q, %v", len(all), next, err)
	}
	if !slices.IsSortedFunc(all, func(a, b gossip.Head) int {
		if c := bytes.Compare(a.Tracker[:], b.Tracker[:]); c != 0 {
			return c
		}
		return bytes.Compare(a.AuthorKey, b.AuthorKey)
	}) {
		t.Fatal("heads are not in tracker-then-author byte order")
	}
	pages := func(filter []topics.TrackerID) []gossip.Head {
		var got []gossip.Head
		after := ""
		for range 20 {
			page, next, err := s.Heads(after, 3, filter)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if next == "" {
				return got
			}
			after = next
		}
		t.Fatal("paging does not end")
		return nil
	}
	key := func(h gossip.Head) string { return fmt.Sprint(h.Tracker, h.Author) }
	if got := pages(nil); !slices.EqualFunc(got, all, func(a, b gossip.Head) bool { return key(a) == key(b) }) {
		t.Fatalf("paged %d heads, want the %d of one page in the same order", len(got), len(all))
	}
	filter := []topics.TrackerID{trackers[7], trackers[2], trackers[4], trackers[9]}
	got := pages(filter)
	if len(got) != len(filter) {
		t.Fatalf("paged %d heads of %d trackers", len(got), len(filter))
	}
	for _, h := range got {
		if !slices.Contains(filter, h.Tracker) {
			t.Fatalf("head of tracker %s, not asked for", h.Tracker)
		}
	}
	if _, _, err := s.Heads("garbage", 3, nil); err == nil {
		t.Fatal("a bad page token was taken")
	}
}
