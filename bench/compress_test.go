package bench

import (
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
)

// BenchmarkCompression decides whether the log should compress envelopes
// itself. It reports, for 1 KB Things and the spec's Things:
//   - zstd-ratio: raw bytes / bytes after compressing each envelope alone
//     with zstd (what per-envelope compression would save),
//   - disk-ratio: raw envelope bytes / the log's tables and blob files after
//     a flush (what Pebble's own block compression already achieves, with
//     keys, indexes and state included),
//   - ns/op: the cost of compressing one envelope.
func BenchmarkCompression(b *testing.B) {
	for _, shape := range []struct {
		name   string
		things func(n int) []*topics.Thing
	}{{"1KB", oneKBThings}, {"spec", specThings}} {
		b.Run(shape.name, func(b *testing.B) {
			const n = 4000
			anns := signedAnnouncements(b, 4, n, shape.things)
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
			if err != nil {
				b.Fatal(err)
			}
			raw, packed := 0, 0
			for _, a := range anns {
				raw += len(a.raw)
				packed += len(enc.EncodeAll(a.raw, nil))
			}
			diskRatio := diskRatio(b, anns)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				enc.EncodeAll(anns[i%n].raw, nil)
			}
			b.ReportMetric(float64(raw)/float64(packed), "zstd-ratio")
			b.ReportMetric(diskRatio, "disk-ratio")
			b.Logf("config: %d envelopes, avg %d B, zstd default level per envelope, Pebble default block compression", n, raw/n)
		})
	}
}

// diskRatio appends anns to a fresh log, closes it (flushing the memtable)
// and returns raw envelope bytes / bytes on disk.
func diskRatio(b *testing.B, anns []signed) float64 {
	dir := b.TempDir()
	l, err := feed.Open(dir, feed.Config{})
	if err != nil {
		b.Fatal(err)
	}
	fill(b, l, anns)
	raw := 0
	for _, s := range anns {
		raw += len(s.raw)
	}
	if err := l.Flush(); err != nil {
		b.Fatal(err)
	}
	size := l.Stats().DataBytes
	l.Close()
	return float64(raw) / float64(size)
}
