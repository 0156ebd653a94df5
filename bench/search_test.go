package bench

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/internal/cputime"
	"github.com/thingtracker/ttn/search"
	"github.com/thingtracker/ttn/view"
)

// queryBound is the latency a search's p99 must stay under.
const queryBound = 50 * time.Millisecond

// BenchmarkSearch measures the full-text index (package search) over N
// varied Things (TTN_SEARCH_THINGS, default 100,000; 2,000 with -short):
//   - indexing rate as a ratio of the log's ingest rate in the same run:
//     ingest as BenchmarkIngest does it (Validate, then Append, with fsync,
//     from many goroutines), then the index built from that log alone, by
//     the feeder's own path (LogSource, bleve batches). Target ≥ 1: the
//     index never falls behind live ingest;
//   - live: the ingest again into a fresh log with the feeder following
//     it, and how far behind the index is when the ingest ends;
//   - query latency p50 and p99 over varied queries (common and rare
//     words, two words, a tag or licence filter, every facet), as a ratio
//     of the 50 ms bound (target ≤ 1);
//   - the index's size on disk per Thing, beside the log's.
func BenchmarkSearch(b *testing.B) {
	n := 100000
	queries := 2000
	if testing.Short() {
		n, queries = 2000, 200
	}
	if v := os.Getenv("TTN_SEARCH_THINGS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal("TTN_SEARCH_THINGS:", err)
		}
	}
	anns := signedAnnouncements(b, 16, n, oneKBThings)
	ctx := context.Background()
	for range b.N {
		// Ingest alone.
		logDir := b.TempDir()
		l, err := feed.Open(logDir, feed.Config{})
		if err != nil {
			b.Fatal(err)
		}
		ingest, ingestCores := ingestAll(b, l, anns)
		ingestRate := float64(n) / ingest.Seconds()

		// The index from that log, alone.
		idxDir := filepath.Join(b.TempDir(), "index")
		ix, err := search.Open(idxDir, datadir.NewLogSource(l), search.Config{})
		if err != nil {
			b.Fatal(err)
		}
		cpu0 := cputime.Process()
		start := time.Now()
		if err := ix.CatchUp(ctx); err != nil {
			b.Fatal(err)
		}
		index := time.Since(start)
		indexCores := (cputime.Process() - cpu0).Seconds() / index.Seconds()
		indexRate := float64(n) / index.Seconds()
		if err := ix.Close(); err != nil {
			b.Fatal(err)
		}
		if err := l.Flush(); err != nil {
			b.Fatal(err)
		}
		idxBytes, logBytes := dirSize(b, idxDir), dirSize(b, logDir)

		// Queries, on the index reopened as after a restart.
		ix, err = search.Open(idxDir, datadir.NewLogSource(l), search.Config{})
		if err != nil {
			b.Fatal(err)
		}
		p50, p99, hits := queryLatencies(b, ix, queries)
		ix.Close()
		l.Close()

		// Live: ingest with the feeder following.
		l2, err := feed.Open(b.TempDir(), feed.Config{})
		if err != nil {
			b.Fatal(err)
		}
		live, err := search.Open(filepath.Join(b.TempDir(), "index"), datadir.NewLogSource(l2), search.Config{Follow: true})
		if err != nil {
			b.Fatal(err)
		}
		liveIngest, _ := ingestAll(b, l2, anns)
		behind := live.Behind()
		start = time.Now()
		for live.Behind() > 0 {
			time.Sleep(time.Millisecond)
			if time.Since(start) > 10*time.Minute {
				b.Fatal("the live index never caught up")
			}
		}
		catchUp := time.Since(start)
		live.Close()
		l2.Close()

		b.ReportMetric(ingestRate, "ingest/s")
		b.ReportMetric(indexRate, "index/s")
		b.ReportMetric(indexRate/ingestRate, "index/ingest")
		b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(p99)/float64(queryBound), "p99/bound")
		b.ReportMetric(float64(idxBytes)/float64(n), "index-B/thing")
		b.ReportMetric(float64(behind), "live-behind")
		b.Logf("config: GOMAXPROCS=%d things=%d (varied, ~1 KB announcements, 16 authors) queries=%d batch=%d; ingest %.0f/s (%.2f cores), index alone %.0f/s (%.2f cores): ratio %.2f (target ≥ 1); live: the index %d entries behind when the ingest (%.0f/s) ended, caught up %v later; query p50 %v p99 %v (%.2f of the %v bound; %.0f hits per query on average); index %.0f B/Thing (%.1f MiB), log %.0f B/Thing",
			runtime.GOMAXPROCS(0), n, queries, search.DefaultConfig().BatchSize, ingestRate, ingestCores, indexRate, indexCores, indexRate/ingestRate,
			behind, float64(n)/liveIngest.Seconds(), catchUp.Round(time.Millisecond), p50, p99, float64(p99)/float64(queryBound), queryBound, hits,
			float64(idxBytes)/float64(n), float64(idxBytes)/(1<<20), float64(logBytes)/float64(n))
	}
}

// queryLatencies runs n varied queries, one at a time, and returns the
// median and 99th percentile latencies and the mean hits.
func queryLatencies(b *testing.B, ix *search.Index, n int) (p50, p99 time.Duration, hits float64) {
	rng := rand.New(rand.NewPCG(7, 7))
	words := newVocabulary(rand.New(rand.NewPCG(1, 1))) // oneKBThings' words
	st := search.Standing{Levels: map[string]string{}}
	var lat []time.Duration
	total := uint64(0)
	for i := range n {
		var q view.SearchQuery
		switch i % 6 {
		case 0:
			q.Text = words.word() // common
		case 1:
			q.Text = words.words[rng.IntN(len(words.words))] // mostly rare
		case 2:
			q.Text = words.word() + " " + words.word()
		case 3:
			q.Text, q.Tag = words.word(), words.tag()
		case 4:
			q.Licence = benchLicenses[rng.IntN(len(benchLicenses))]
		case 5:
			q.Text, q.From = words.tag(), 20
		}
		start := time.Now()
		res, err := ix.Search(context.Background(), q, st)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		total += res.Total
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], float64(total) / float64(n)
}

// dirSize returns the bytes of the files under dir.
func dirSize(b *testing.B, dir string) int64 {
	var size int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			size += info.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return size
}
