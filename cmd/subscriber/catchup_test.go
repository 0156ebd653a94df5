package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// logIDs returns the IDs of a data dir's log entries of trackers, through
// the announcer command (and the running node's socket).
func logIDs(t testing.TB, dir string, trackers ...string) map[topics.ID]bool {
	t.Helper()
	want := map[string]bool{}
	for _, tr := range trackers {
		want[tr] = true
	}
	out := map[topics.ID]bool{}
	for _, line := range strings.Split(strings.TrimSpace(cli(t, "", "log", "--data", dir, "--format", "json")), "\n") {
		if line == "" {
			continue
		}
		var e view.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		if want[e.Tracker.String()] {
			out[e.ID] = true
		}
	}
	return out
}

// TestFollowerRestartCatchesUp: a follower is stopped while 5,000
// announcements on three trackers by two authors are published, then
// restarted: it ends with exactly the announcements of what it follows,
// each printed once over its two runs.
func TestFollowerRestartCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: 5,000 announcements")
	}
	root := t.TempDir()
	adir, bdir := filepath.Join(root, "a"), filepath.Join(root, "b")
	a := startProc(t, "a", announcerBin, append([]string{"run", "--data", adir}, fast...)...)
	ga := a.waitReady()
	b := startProc(t, "b", announcerBin, append([]string{"run", "--data", bdir, "--join", ga}, fast...)...)
	b.waitReady()
	t1 := strings.TrimSpace(cli(t, "", "tracker", "create", "--data", adir, "--name", "t1"))
	t2 := strings.TrimSpace(cli(t, "", "tracker", "create", "--data", adir, "--name", "t2"))
	t3 := strings.TrimSpace(cli(t, "", "tracker", "create", "--data", bdir, "--name", "t3"))

	args := append([]string{"--data", filepath.Join(root, "s"), "--join", ga, "--follow", t1, "--follow", t3, "--format", "json", "--quiet"}, fast...)
	s := startProc(t, "s", subscriberBin, args...)
	s.waitReady()
	cli(t, ndjson("live", 10), "publish", "--data", adir, "--tracker", t1, "-")
	wait.For(t, 20*time.Second, func() error {
		if n := len(s.entries()); n < 12 { // t1: tracker + 10; t3: tracker
			return fmt.Errorf("first run printed %d entries", n)
		}
		return nil
	})
	s.stop()
	first := s.entries()

	cli(t, ndjson("t1", 2000), "publish", "--data", adir, "--tracker", t1, "-")
	cli(t, ndjson("t2", 1500), "publish", "--data", adir, "--tracker", t2, "-")
	cli(t, ndjson("t3", 1500), "publish", "--data", bdir, "--tracker", t3, "-")

	want := logIDs(t, adir, t1)
	for id := range logIDs(t, bdir, t3) {
		want[id] = true
	}
	if len(want) != 2+2010+1500 {
		t.Fatalf("the publishers hold %d announcements of t1 and t3", len(want))
	}
	again := startProc(t, "s again", subscriberBin, args...)
	again.waitReady()
	wait.For(t, 60*time.Second, func() error {
		if n := len(first) + len(again.entries()); n < len(want) {
			return fmt.Errorf("printed %d of %d", n, len(want))
		}
		return nil
	})
	// A sentinel, published last: the subscriber prints in log order, so
	// anything printed twice or more would show before it.
	sentinel := strings.TrimSpace(cli(t, ndjson("sentinel", 1), "publish", "--data", adir, "--tracker", t1, "-"))
	var id topics.ID
	if err := id.UnmarshalText([]byte(sentinel)); err != nil {
		t.Fatalf("publish printed %q: %v", sentinel, err)
	}
	want[id] = true
	wait.For(t, 20*time.Second, func() error {
		es := again.entries()
		if len(es) == 0 || es[len(es)-1].ID != id {
			return errors.New("the sentinel is not printed yet")
		}
		return nil
	})
	printed := map[topics.ID]int{}
	for _, e := range append(first, again.entries()...) {
		printed[e.ID]++
		if _, err := topics.Validate(e.Topic, e.Envelope, time.Time{}); err != nil {
			t.Fatalf("printed an invalid envelope: %v", err)
		}
	}
	for id, n := range printed {
		if n != 1 {
			t.Errorf("%s printed %d times", id, n)
		}
		if !want[id] {
			t.Errorf("%s printed but not followed", id)
		}
	}
	if len(printed) != len(want) {
		t.Fatalf("printed %d distinct announcements, want %d", len(printed), len(want))
	}
}
