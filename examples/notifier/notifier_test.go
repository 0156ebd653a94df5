package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/topics"
)

// TestRestartMidStream runs the notifier against a real node, kills it
// (SIGKILL) while Things keep coming, and restarts it: between its two runs
// it prints every tagged Thing, at most the one in flight twice, and no
// other.
func TestRestartMidStream(t *testing.T) {
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "notifier")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cfg := nodetest.Config(t)
	cfg.NATS = &natsapi.Config{Addr: "0"}
	n := nodetest.Start(t, cfg)
	tr, err := n.CreateTracker(ctx, topics.TrackerInfo{Name: "parts"}, false)
	if err != nil {
		t.Fatal(err)
	}
	wanted := map[string]bool{}
	publish := func(from, to int) {
		var ts []topics.Thing
		for i := from; i < to; i++ {
			th := topics.Thing{ID: fmt.Sprintf("t%04d", i), Title: fmt.Sprintf("Thing %d", i), Version: "1"}
			if i%2 == 0 {
				th.Tags = []string{"Fun"}
				wanted[th.ID] = true
			}
			ts = append(ts, th)
		}
		if _, err := n.Publish(ctx, tr.ID, ts); err != nil {
			t.Error(err)
		}
	}
	publish(0, 100) // before the notifier first runs

	var mu sync.Mutex
	printed := map[string]int{}
	lines := 0
	thingID := regexp.MustCompile(`\(thing (t\d+) on `)
	cursor := filepath.Join(t.TempDir(), "cursor")
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "--nats", "nats://"+n.NATSAddr(), "--tag", "fun", "--cursor", cursor)
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			s := bufio.NewScanner(out)
			for s.Scan() {
				m := thingID.FindStringSubmatch(s.Text())
				mu.Lock()
				lines++
				if m == nil {
					t.Errorf("unexpected line %q", s.Text())
				} else {
					printed[m[1]]++
				}
				mu.Unlock()
			}
		}()
		return cmd
	}
	waitLines := func(want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			got := lines
			mu.Unlock()
			if got >= want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("notifier printed %d lines, want %d", got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	first := start()
	done := make(chan struct{})
	go func() { // Things keep coming, before, during and after the restart
		defer close(done)
		for i := 100; i < 400; i += 10 {
			publish(i, i+10)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	waitLines(80)
	first.Process.Kill()
	first.Wait()
	second := start()
	t.Cleanup(func() { second.Process.Kill(); second.Wait() })
	<-done
	waitLines(len(wanted))
	time.Sleep(200 * time.Millisecond) // anything more would be a duplicate

	mu.Lock()
	defer mu.Unlock()
	twice := 0
	for id, c := range printed {
		if !wanted[id] {
			t.Errorf("printed %s, which is not tagged", id)
		}
		if c > 1 {
			twice += c - 1
		}
	}
	for id := range wanted {
		if printed[id] == 0 {
			t.Errorf("missed %s", id)
		}
	}
	if twice > 1 {
		t.Errorf("%d lines printed again after the restart, want at most 1", twice)
	}
}
