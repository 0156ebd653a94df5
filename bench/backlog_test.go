package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/node"
	"github.com/thingtracker/ttn/topics"
)

// BenchmarkBacklog: a node whose dir holds N own announcements, appended
// while no node ran, starts beside one peer that follows the tracker: the
// backlog goes out, and the peer ends with all of it. The node runs as its
// own process (the real binary), so that its memory is its own: the
// figures are its peak heap (go_memstats_heap_inuse_bytes, read from its
// /metrics every 20 ms) and its peak resident set (VmHWM), which must stay
// flat in N. TTN_BACKLOG sets N (default 50,000; 2,000 with -short).
func BenchmarkBacklog(b *testing.B) {
	n := 50000
	if testing.Short() {
		n = 2000
	}
	if v := os.Getenv("TTN_BACKLOG"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal("TTN_BACKLOG:", err)
		}
	}
	bin := filepath.Join(b.TempDir(), "announcer")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/announcer").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	ctx := context.Background()
	root := b.TempDir()
	adir := filepath.Join(root, "a")
	tracker := offlineBacklog(b, adir, n)

	peer, err := node.New(ctx, node.Config{
		Dir: filepath.Join(root, "b"), Listen: []string{"/ip4/127.0.0.1/tcp/0"}, GossipAddr: "127.0.0.1:0",
		Follow: datadir.FollowSet{Trackers: []topics.TrackerID{tracker}}, MinFree: -1,
		// No quotas: 500,000 Things of 1 KB pass the default 512 MiB a
		// tracker, and the peer would stop at 479,858 (as it did); and
		// the author, unknown to the peer, would get 64 MiB.
		AuthorQuota: -1, TrackerQuota: -1, Budgets: node.Budgets{Unknown: node.Budget{Quota: -1}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer peer.Close()

	for b.Loop() {
		start := time.Now()
		cmd := exec.Command(bin, "run", "--data", adir, "--listen", "/ip4/127.0.0.1/tcp/0", "--gossip-addr", "127.0.0.1:0",
			"--join", peer.GossipAddr(), "--nats", "off", "--http", "127.0.0.1:0", "--min-free", "0", "--log-level", "warn")
		stderr, _ := cmd.StderrPipe() // where the node prints its addresses
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		httpAddr := make(chan string, 1)
		go func() {
			s := bufio.NewScanner(stderr)
			for s.Scan() {
				if a, ok := strings.CutPrefix(s.Text(), "http http://"); ok {
					httpAddr <- a
				}
			}
		}()
		var addr string
		select {
		case addr = <-httpAddr:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			b.Fatal("the node printed no HTTP address")
		}
		peak, rounds := 0.0, 0
		sample := time.NewTicker(20 * time.Millisecond)
		// A generous deadline: the figure is memory, not speed, and a loaded
		// machine catches up 500,000 in well over 4 ms each.
		deadline := time.Now().Add(time.Duration(n)*10*time.Millisecond + 2*time.Minute)
		for held(peer, tracker) < uint64(n)+1 { // the tracker record too
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				b.Fatalf("the peer holds %d of %d entries (peak heap so far %.1f MiB over %d samples)", held(peer, tracker), n+1, peak/(1<<20), rounds)
			}
			if h, err := heapInuse(addr); err == nil {
				peak = max(peak, h)
				rounds++
			}
			<-sample.C
		}
		sample.Stop()
		elapsed := time.Since(start)
		hwm := vmHWM(cmd.Process.Pid)
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		b.ReportMetric(peak/(1<<20), "peak-heap-MiB")
		b.ReportMetric(hwm/(1<<20), "peak-rss-MiB")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "announcements/s")
		b.Logf("config: backlog %d announcements (1 KB Things), one peer on loopback; peak heap %.1f MiB over %d samples, peak RSS %.1f MiB, all at the peer in %v",
			n, peak/(1<<20), rounds, hwm/(1<<20), elapsed.Round(time.Millisecond))
	}
}

// held is how far the peer holds the tracker's chain.
func held(peer *node.Node, tracker topics.TrackerID) uint64 {
	hs, err := peer.Log.TrackerHeads(tracker)
	if err != nil || len(hs) == 0 {
		return 0
	}
	return hs[0].Seq
}

// offlineBacklog creates a dir and publishes n Things on a tracker of it
// with no node running, as 'announcer publish' does offline.
func offlineBacklog(b *testing.B, dir string, n int) topics.TrackerID {
	if _, _, err := datadir.InitIdentity(dir); err != nil {
		b.Fatal(err)
	}
	d, err := datadir.Open(dir, feed.Config{MinFree: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	tr, err := d.CreateTracker(ctx, topics.TrackerInfo{Name: "backlog"}, false)
	if err != nil {
		b.Fatal(err)
	}
	for start := 0; start < n; start += 5000 {
		ts := oneKBThings(min(5000, n-start))
		things := make([]topics.Thing, len(ts))
		for i, t := range ts {
			things[i] = *t
			things[i].ID = fmt.Sprintf("thing-%d", start+i)
		}
		if _, err := d.Publish(ctx, tr.ID, things); err != nil {
			b.Fatal(err)
		}
	}
	return tr.ID
}

// heapInuse reads go_memstats_heap_inuse_bytes from a node's /metrics.
func heapInuse(addr string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, err
	}
	mf, ok := mfs["go_memstats_heap_inuse_bytes"]
	if !ok || len(mf.Metric) == 0 {
		return 0, fmt.Errorf("no heap figure")
	}
	return mf.Metric[0].GetGauge().GetValue(), nil
}

// vmHWM is a process's peak resident set, in bytes (Linux; 0 elsewhere).
func vmHWM(pid int) float64 { return procBytes(pid, "VmHWM") }

// procBytes is a size in a process's /proc status (VmRSS, VmHWM …), in
// bytes (Linux; 0 elsewhere).
func procBytes(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024
		}
	}
	return 0
}
