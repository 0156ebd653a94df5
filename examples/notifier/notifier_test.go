package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/internal/racebuild"
	"github.com/thingtracker/ttn/internal/wait"
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
	if out, err := exec.Command("go", append(append([]string{"build"}, racebuild.BuildFlags()...), "-o", bin, ".")...).CombinedOutput(); err != nil {
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
	thingID := regexp.MustCompile(`\(thing (t\d+) on `)
	cursor := filepath.Join(t.TempDir(), "cursor")
	// start runs the notifier; stop kills it and returns once all it
	// printed is counted.
	start := func() (stop func()) {
		cmd := exec.Command(bin, "--nats", "nats://"+n.NATSAddr(), "--tag", "fun", "--cursor", cursor)
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() }) // if the test stops early
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			s := bufio.NewScanner(out)
			for s.Scan() {
				m := thingID.FindStringSubmatch(s.Text())
				mu.Lock()
				if m == nil {
					t.Errorf("unexpected line %q", s.Text())
				} else {
					printed[m[1]]++
				}
				mu.Unlock()
			}
		}()
		return func() {
			cmd.Process.Kill()
			<-drained // before Wait, which closes the pipe
			cmd.Wait()
		}
	}
	distinct := func(want int) func() error {
		return func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(printed) < want {
				return fmt.Errorf("notifier printed %d Things, want %d", len(printed), want)
			}
			return nil
		}
	}

	stop := start()
	done := make(chan struct{})
	go func() { // Things keep coming, before, during and after the restart
		defer close(done)
		for i := 100; i < 400; i += 10 {
			publish(i, i+10)
			time.Sleep(5 * time.Millisecond) // spread them over the restart
		}
	}()
	wait.For(t, 20*time.Second, distinct(40))
	stop()
	stop = start()
	<-done
	wait.For(t, 20*time.Second, distinct(len(wanted)))
	// Done when its cursor reaches the end of the log: nothing more comes.
	wait.For(t, 20*time.Second, func() error {
		b, _ := os.ReadFile(cursor)
		if got, want := strings.TrimSpace(string(b)), fmt.Sprint(n.Log.Last()); got != want {
			return fmt.Errorf("cursor %q, log at %s", got, want)
		}
		return nil
	})
	stop()

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
