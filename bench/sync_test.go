package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/node"
	"github.com/thingtracker/ttn/topics"
)

// syncLog returns a log holding n 1 KB announcements of one chain, and the
// chain's tracker and author key.
func syncLog(b *testing.B, n int) (*feed.Log, []signed, topics.TrackerID, []byte) {
	b.Helper()
	anns := signedAnnouncements(b, 1, n, oneKBThings)
	l, err := feed.Open(b.TempDir(), feed.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	fill(b, l, anns)
	first, _ := topics.Validate(anns[0].topic, anns[0].raw, time.Time{})
	return l, anns, first.Payload.Tracker, first.Env.RawKey
}

// BenchmarkCatchUp measures the two ends of a late joiner's catch-up:
//   - apply: receiving a pre-built compressed fetch response (decompress,
//     verify every envelope on every core, append with fsync), as a ratio of
//     raw crypto/ed25519 verification on the same cores: target ≥ 0.7 on 2;
//   - serve: reading the log and writing the response (batches, zstd), as a
//     ratio of a raw Pebble scan of the same chain: target ≥ 0.25.
func BenchmarkCatchUp(b *testing.B) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	src, anns, tracker, author := syncLog(b, n)
	hist := node.LogStore{Log: src}
	req := gossip.FetchRequest{Tracker: tracker, All: true}
	var stream bytes.Buffer
	if _, err := gossip.ServeFetch(context.Background(), &stream, hist, req, nil); err != nil {
		b.Fatal(err)
	}
	verifyRate := rawVerifyRate(b, anns, ed25519.Verify)
	ruleRate := rawVerifyRate(b, anns, ruleVerify)

	for range b.N {
		// Apply, into a fresh log.
		dst, err := feed.Open(b.TempDir(), feed.Config{})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		res, err := gossip.ReadFetch(context.Background(), bytes.NewReader(stream.Bytes()), node.LogStore{Log: dst}, req, nil)
		applyTime := time.Since(start)
		dst.Close()
		if err != nil || res.Stored != n {
			b.Fatalf("apply: %+v %v", res, err)
		}
		applyRate := float64(n) / applyTime.Seconds()

		// Serve, and the raw scan it is measured against, each repeated for
		// at least 300 ms.
		serveRate := repeatRate(n, func() {
			if sent, err := gossip.ServeFetch(context.Background(), io.Discard, hist, req, nil); err != nil || sent != n {
				b.Fatalf("serve: %d %v", sent, err)
			}
		})
		scannedBytes := 0
		scanRate := repeatRate(n, func() {
			scanned := 0
			scannedBytes = 0
			if err := src.ScanChain(tracker, author, 1, func(_ uint64, _ byte, env []byte) bool {
				scanned++
				scannedBytes += len(env)
				return true
			}); err != nil || scanned != n {
				b.Fatalf("scan: %d %v", scanned, err)
			}
		})

		b.ReportMetric(applyRate, "apply/s")
		b.ReportMetric(applyRate/verifyRate, "apply-vs-verify")
		b.ReportMetric(applyRate/ruleRate, "apply-vs-rule")
		b.ReportMetric(serveRate, "serve/s")
		b.ReportMetric(serveRate/scanRate, "serve-vs-scan")
		b.Logf("config: %d announcements of 1 KB in one chain, GOMAXPROCS=%d, fsync on; stream %d bytes (%.2fx smaller than the envelopes)",
			n, runtime.GOMAXPROCS(0), stream.Len(), float64(scannedBytes)/float64(stream.Len()))
		b.Logf("apply %.0f/s vs raw crypto/ed25519 verify %.0f/s: %.2f (target ≥ 0.7), vs our rule's raw verify %.0f/s: %.2f; serve %.0f/s vs raw scan %.0f/s: %.2f (target ≥ 0.25)",
			applyRate, verifyRate, applyRate/verifyRate, ruleRate, applyRate/ruleRate, serveRate, scanRate, serveRate/scanRate)
	}
}

// repeatRate runs f (which handles n items) until 300 ms have passed and
// returns items per second.
func repeatRate(n int, f func()) float64 {
	start := time.Now()
	runs := 0
	for runs == 0 || time.Since(start) < 300*time.Millisecond {
		f()
		runs++
	}
	return float64(n*runs) / time.Since(start).Seconds()
}
