package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/topics"
)

// longCatchUp is how many announcements a catch-up must bring before its
// progress is shown.
const longCatchUp = 1000

// progress shows a long catch-up on stderr: a bar on a terminal, a plain
// line every few seconds otherwise.
type progress struct {
	w   io.Writer
	tty bool

	mu    sync.Mutex
	per   map[topics.TrackerID]gossip.FetchResult // the latest fetch of each tracker
	bar   *progressbar.ProgressBar
	shown time.Time
}

func newProgress(w *os.File) *progress {
	return &progress{w: w, tty: term.IsTerminal(int(w.Fd())), per: make(map[topics.TrackerID]gossip.FetchResult)}
}

// update is called after each batch a fetch stores.
func (p *progress) update(t topics.TrackerID, r gossip.FetchResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.per[t] = r
	planned, received := 0, 0
	for _, f := range p.per {
		planned += f.Planned
		received += min(f.Received, f.Planned)
	}
	if planned < longCatchUp {
		return
	}
	if p.tty {
		if p.bar == nil {
			p.bar = progressbar.NewOptions64(int64(planned), progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription("catching up"), progressbar.OptionShowCount(),
				progressbar.OptionShowIts(), progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish())
		}
		p.bar.ChangeMax64(int64(planned))
		p.bar.Set64(int64(received))
		if received >= planned {
			p.bar.Finish()
			p.bar = nil
		}
		return
	}
	if time.Since(p.shown) >= 2*time.Second || received >= planned {
		p.shown = time.Now()
		fmt.Fprintf(p.w, "catching up: %d of %d announcements from %d trackers\n", received, planned, len(p.per))
	}
}
