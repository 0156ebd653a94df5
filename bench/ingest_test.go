package bench

import (
	"context"
	"crypto/ed25519"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/internal/cputime"
	"github.com/thingtracker/ttn/topics"
)

// ingestWorkers is how many goroutines validate and append at once, as
// GossipSub's validation pipeline runs them (its default throttle allows
// 8192 concurrent validations): enough that the CPUs stay busy while
// appenders wait for their group's fsync.
const ingestWorkers = 2048

// BenchmarkIngest measures our ingest (Validate, then Append to a real Pebble
// log on disk with fsync, through the log's separate writer goroutine) as a
// ratio of raw crypto/ed25519 verification measured in the same run with the
// same number of cores. Run with -cpu 1,2. Targets: ≥ 0.75 on 2 cores and
// ≥ 0.65 on 1 core with 1 KB Things.
func BenchmarkIngest(b *testing.B) {
	for _, shape := range []struct {
		name   string
		things func(n int) []*topics.Thing
	}{
		{"1KB", oneKBThings},
		{"spec", specThings},
	} {
		b.Run(shape.name, func(b *testing.B) {
			anns := signedAnnouncements(b, 16, b.N, shape.things)
			verifyRate := rawVerifyRate(b, anns, ed25519.Verify)
			ruleRate := rawVerifyRate(b, anns, ruleVerify)

			l, err := feed.Open(b.TempDir(), feed.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			b.ResetTimer()
			elapsed, cores := ingestAll(b, l, anns)
			b.StopTimer()
			rate := float64(len(anns)) / elapsed.Seconds()
			st := l.Stats()
			b.ReportMetric(rate, "ann/s")
			b.ReportMetric(verifyRate, "verify/s")
			b.ReportMetric(rate/verifyRate, "ratio")
			b.ReportMetric(rate/ruleRate, "vs-rule")
			b.ReportMetric(float64(len(anns))/float64(max(st.Commits, 1)), "ann/commit")
			b.ReportMetric(cores, "cores-used")
			if b.N < 1000 {
				return // a smoke run: too short for a figure
			}
			b.Logf("config: GOMAXPROCS=%d workers=%d announcements=%d avg-envelope=%dB authors=16 fsync=on; crypto/ed25519 verify %.0f/s, our rule's raw verify %.0f/s, ingest %.0f/s; ratio %.2f (target ≥ 0.75 on 2 cores, ≥ 0.65 on 1), %.2f of our rule's raw verify, %.2f cores used",
				runtime.GOMAXPROCS(0), ingestWorkers, len(anns), avgSize(anns), verifyRate, ruleRate, rate, rate/verifyRate, rate/ruleRate, cores)
		})
	}
}

// ruleVerify is the network's signature rule alone, one signature at a
// time.
func ruleVerify(pub, msg, sig []byte) bool { return topics.VerifySignature(pub, msg, sig) }

// rawVerifyRate measures verify (crypto/ed25519.Verify: the bound of our own
// code; or our rule alone) over the announcements' signed bytes on every core.
func rawVerifyRate[K ~[]byte](b *testing.B, anns []signed, verify func(pub K, msg, sig []byte) bool) float64 {
	type job struct {
		pub, msg, sig []byte
	}
	n := min(len(anns), 4000)
	jobs := make([]job, 0, n)
	for _, a := range anns[:n] {
		e, err := topics.DecodeEnvelope(a.raw)
		if err != nil {
			b.Fatal(err)
		}
		jobs = append(jobs, job{e.RawKey, e.SignedBytes(), e.Signature()})
	}
	const minDuration = 300 * time.Millisecond
	var done atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Since(start) < minDuration; i++ {
				j := jobs[i%len(jobs)]
				if !verify(K(j.pub), j.msg, j.sig) {
					b.Error("raw verify failed")
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds()
}

func avgSize(anns []signed) int {
	total := 0
	for _, a := range anns {
		total += len(a.raw)
	}
	return total / max(len(anns), 1)
}

// ingestAll validates and appends anns to l from ingestWorkers goroutines,
// as BenchmarkIngest does, and returns how long it took and the cores used.
func ingestAll(b *testing.B, l *feed.Log, anns []signed) (time.Duration, float64) {
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0 := cputime.Process()
	start := time.Now()
	for range ingestWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(anns) {
					return
				}
				a, err := topics.Validate(anns[i].topic, anns[i].raw, time.Time{})
				if err != nil {
					b.Error(err)
					return
				}
				if r, err := l.Append(context.Background(), a); err != nil || r.Status != feed.Stored {
					b.Errorf("append: %v %v", r.Status, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	return d, (cputime.Process() - cpu0).Seconds() / d.Seconds()
}
