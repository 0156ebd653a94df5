package feed

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/thingtracker/ttn/topics"
)

// BenchmarkAppend measures the log alone: appends of validated 1 KB
// announcements from many goroutines to a real on-disk log with fsync. With
// -cpu 1 its ns/op is the CPU cost of an append.
func BenchmarkAppend(b *testing.B) {
	const authors = 16
	var anns []*topics.Announcement
	for i := range authors {
		a := newAuthor(b, byte(i+1))
		var prev topics.ID
		for seq := 1; seq <= b.N/authors+1; seq++ {
			ann := a.sign(a.tracker("x"), uint64(seq), prev, &topics.Thing{ID: fmt.Sprint(seq), Title: "T", Version: "1", Description: strings.Repeat("d", 800)})
			prev = ann.ID
			anns = append(anns, ann)
		}
	}
	l, err := Open(b.TempDir(), Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for range 512 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if _, err := l.Append(context.Background(), anns[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
