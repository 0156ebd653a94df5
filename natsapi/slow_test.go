package natsapi_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thingtracker/ttn/internal/wait"

	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/natsapi"
)

// TestSlowPlugin: a plugin that never reads does not hold the node back:
// the server cuts it (a slow consumer, counted), the fan-out goes on to
// the end of the log, a healthy plugin receives everything, and history
// still holds all of it.
func TestSlowPlugin(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "nats.conf")
	// 3 MB go out: the stuck plugin passes max_pending and is cut; the
	// healthy one, reading in this busy process (race detector, the
	// node's search index), has a few hundred messages of slack.
	os.WriteFile(conf, []byte("max_payload: 128KB\nmax_pending: 1MB\nwrite_deadline: \"2s\"\n"), 0o600)
	n := nodetest.Start(t, nodeConfig(t, &natsapi.Config{Addr: "0", ConfigFile: conf}))
	nodetest.StuckPlugin(t, n.NATSAddr())
	healthy := connect(t, n)
	sub, err := healthy.SubscribeSync(natsapi.AnnouncePrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	sub.SetPendingLimits(-1, -1)
	healthy.Flush()
	tr := createTracker(t, n, "t")

	const count = 2000
	batch := things("big", count)
	for i := range batch {
		batch[i].Description = strings.Repeat("A long description of a printable thing. ", 25)
	}
	for i := 0; i < count; i += 100 {
		publish(t, n, tr, batch[i:i+100])
	}
	last := n.Log.Last()
	wait.For(t, 20*time.Second, func() error {
		st, err := n.Status(context.Background())
		if err != nil {
			return err
		}
		if st.NATS.SlowConsumers < 1 || st.NATS.Cursor != last {
			return fmt.Errorf("slow consumers %d, fan-out at %d of %d", st.NATS.SlowConsumers, st.NATS.Cursor, last)
		}
		return nil
	})
	for c := uint64(1); c <= last; c++ {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("healthy plugin, waiting for %d: %v", c, err)
		}
		if e := checkMessage(t, m); e.Cursor != c {
			t.Fatalf("healthy plugin got %d, want %d", e.Cursor, c)
		}
	}
	// What the stuck plugin lost, history has.
	got := catchUp(t, connect(t, n), 0, 1000, func() bool { return true }, n.Log.Last)
	if uint64(len(got)) != last {
		t.Fatalf("history holds %d entries, want %d", len(got), last)
	}
	if s, err := n.Log.Thing(tr, "big-1999"); err != nil || s.Latest() == nil {
		t.Fatalf("last Thing: %v", err)
	}
}
