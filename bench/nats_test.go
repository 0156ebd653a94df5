package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// memLog is a log held in memory, for measuring the fan-out stage alone:
// its entries become visible all at once when released.
type memLog struct {
	entries []view.Entry
	mu      sync.Mutex
	last    uint64
	wake    chan struct{}
}

func (l *memLog) Last() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

func (l *memLog) release(n uint64) {
	l.mu.Lock()
	l.last = n
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

func (l *memLog) Wait(ctx context.Context, cursor uint64) error {
	for {
		l.mu.Lock()
		last, wake := l.last, l.wake
		l.mu.Unlock()
		if last > cursor {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *memLog) Entries(cursor uint64, limit int) ([]view.Entry, error) {
	end := min(cursor+uint64(limit), l.Last())
	return l.entries[cursor:end], nil
}

func (*memLog) Publish(context.Context, topics.TrackerID, []topics.Thing) (*view.PublishResult, error) {
	return nil, nil
}
func (*memLog) Thing(context.Context, topics.TrackerID, string) (*view.Thing, error) { return nil, nil }
func (*memLog) Things(context.Context, view.ThingsQuery) (*view.ThingsPage, error) {
	return nil, nil
}
func (*memLog) Search(context.Context, view.SearchQuery) (*view.SearchResult, error) {
	return nil, nil
}
func (*memLog) Status(context.Context) (*view.Status, error) { return nil, nil }
func (*memLog) NodeDetail(context.Context, string) (*view.NodeDetail, error) {
	return nil, nil
}
func (*memLog) Discovered(context.Context) ([]view.Discovered, error) { return nil, nil }

// counter is a plugin on TCP counting what it receives.
type counter struct {
	n      atomic.Int64
	target atomic.Int64
	done   chan struct{}
}

func (c *counter) add() {
	if c.n.Add(1) == c.target.Load() {
		close(c.done)
	}
}

// expect arms the counter for n more messages.
func (c *counter) expect(n int) {
	c.done = make(chan struct{})
	c.target.Store(c.n.Load() + int64(n))
}

func (c *counter) wait(b *testing.B) {
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		b.Fatalf("plugin received %d of %d", c.n.Load(), c.target.Load())
	}
}

// headerOverhead is what an announcement's headers take besides the
// envelope: names, the ID, author, seq and cursor.
const headerOverhead = len("NATS/1.0\r\nTtn-Id: \r\nTtn-Author: \r\nTtn-Seq: \r\nTtn-Cursor: \r\nTtn-Envelope: \r\n\r\n") + 64 + 52 + 2*6

// BenchmarkFanOut measures the NATS fan-out stage alone: accepted entries
// held in memory go out with their headers (Ttn-Id, -Author, -Seq,
// -Cursor, -Envelope in base64) through the node's in-process connection
// to a subscriber over TCP. Its bound is bare NATS in the same run: the
// same payloads, without headers, published on an in-process connection of
// the same server to the same subscriber. Target: ≥ 0.5. It also reports
// the ratio to bare messages of the same size as the announcements with
// their headers (same-bytes-ratio): what the fan-out costs beyond carrying
// the bytes. The three run in interleaved rounds, and each rate is the
// median of its rounds, so that a noisy moment on a shared machine does not
// fall on one side only.
//
// Two subscribers: "wire" reads the protocol and counts messages, so that
// the figure is the stage's own (our headers and publish, through the
// server); "nats.go" is a plugin written with nats.go, whose decoding of
// every message's headers (the envelope header is 60% of a message) is
// then the slowest stage of the pipeline.
func BenchmarkFanOut(b *testing.B) {
	b.Run("sub=wire", func(b *testing.B) {
		benchFanOut(b, func(addr string, c *counter) { wireCounter(b, addr, c) })
	})
	b.Run("sub=nats.go", func(b *testing.B) {
		benchFanOut(b, func(addr string, c *counter) {
			plugin, err := nats.Connect("nats://" + addr)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(plugin.Close)
			sub, err := plugin.Subscribe(natsapi.AnnouncePrefix+">", func(*nats.Msg) { c.add() })
			if err != nil {
				b.Fatal(err)
			}
			sub.SetPendingLimits(-1, -1)
			if err := plugin.Flush(); err != nil {
				b.Fatal(err)
			}
		})
	})
}

func benchFanOut(b *testing.B, subscribe func(addr string, c *counter)) {
	const rounds = 5
	per := max(b.N/rounds, 1)
	anns := signedAnnouncements(b, 16, per*rounds, oneKBThings)
	log := &memLog{wake: make(chan struct{}), entries: make([]view.Entry, len(anns))}
	for i, s := range anns {
		a, err := topics.Validate(s.topic, s.raw, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		log.entries[i] = view.NewEntry(uint64(i+1), a)
	}
	srv, err := natsapi.New(context.Background(), natsapi.Config{Addr: "127.0.0.1:0"}, log)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	var c counter
	subscribe(srv.Addr(), &c)
	bare, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		b.Fatal(err)
	}
	defer bare.Close()

	// The same bytes: bare messages as long as the announcements with
	// their headers, to tell NATS's cost of carrying the envelope header
	// from the fan-out's own.
	sizes := make([]int, len(log.entries))
	for i := range log.entries {
		e := &log.entries[i]
		sizes[i] = len(e.Announcement) + base64.StdEncoding.EncodedLen(len(e.Envelope)) + headerOverhead
	}
	blob := make([]byte, slices.Max(sizes))

	// timed runs one round and returns its rate.
	timed := func(send func()) float64 {
		c.expect(per)
		start := time.Now()
		send()
		c.wait(b)
		return float64(per) / time.Since(start).Seconds()
	}
	publish := func(r int, body func(i int) []byte) func() {
		return func() {
			for i := r * per; i < (r+1)*per; i++ {
				e := &log.entries[i]
				if err := bare.Publish(natsapi.Subject(e.Tracker, e.Kind), body(i)); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	var fan, bareRates, same []float64
	b.ResetTimer()
	for r := range rounds {
		bareRates = append(bareRates, timed(publish(r, func(i int) []byte { return log.entries[i].Announcement })))
		fan = append(fan, timed(func() { log.release(uint64((r + 1) * per)) }))
		same = append(same, timed(publish(r, func(i int) []byte { return blob[:sizes[i]] })))
	}
	b.StopTimer()

	if st := srv.Stats(); st.Fanned != uint64(len(anns)) || st.SlowConsumers != 0 {
		b.Fatalf("stats %+v", st)
	}
	rate, bareRate, sameBytesRate := median(fan), median(bareRates), median(same)
	b.ReportMetric(rate, "ann/s")
	b.ReportMetric(bareRate, "bare/s")
	b.ReportMetric(rate/bareRate, "ratio")
	b.ReportMetric(rate/sameBytesRate, "same-bytes-ratio")
	if b.N < 1000 {
		return // a smoke run: too short for a figure
	}
	b.Logf("fan-out of %d announcements of %d bytes (envelope %d, message with headers %d) over TCP, medians of %d interleaved rounds; ratio %.2f (target ≥ 0.5), same-bytes ratio %.2f",
		len(anns), len(log.entries[0].Announcement), len(log.entries[0].Envelope), sizes[0], rounds, rate/bareRate, rate/sameBytesRate)
}

// wireCounter subscribes to every announcement over TCP with the bare
// protocol and counts the messages it reads, skipping their bodies.
func wireCounter(b *testing.B, addr string, c *counter) { wireSubscribe(b, addr, c.add) }

// wireSubscribe subscribes to every announcement over TCP with the bare
// protocol and calls got for each message it reads, skipping their bodies.
func wireSubscribe(b *testing.B, addr string, got func()) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "CONNECT {\"verbose\":false,\"headers\":true,\"protocol\":1}\r\nSUB %s> 1\r\nPING\r\n", natsapi.AnnouncePrefix); err != nil {
		b.Fatal(err)
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	for { // INFO, then the PONG that says the subscription is in place
		line, err := r.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if strings.HasPrefix(line, "PONG") {
			break
		}
	}
	go func() {
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			switch {
			case bytes.HasPrefix(line, []byte("HMSG ")), bytes.HasPrefix(line, []byte("MSG ")):
				// The last field is the size of headers and body.
				f := bytes.Fields(line)
				n, _ := strconv.Atoi(string(f[len(f)-1]))
				if _, err := r.Discard(n + 2); err != nil {
					return
				}
				got()
			case bytes.HasPrefix(line, []byte("PING")):
				conn.Write([]byte("PONG\r\n"))
			}
		}
	}()
}

// median returns the median of xs, which it sorts.
func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// BenchmarkStuckPlugin measures a node's ingest (validate and append
// announcements, in chunks as `announcer ingest` does) while a plugin that
// never reads is subscribed to every announcement, as a ratio of the same
// ingest with no plugin, on fresh nodes in the same run: a slow plugin must
// not slow the node (target: within noise, ≈ 1). The server cuts the plugin
// when its buffer (64 MiB by default) fills; it reports how many were cut.
func BenchmarkStuckPlugin(b *testing.B) {
	anns := signedAnnouncements(b, 16, b.N, oneKBThings)
	envs := make([][]byte, len(anns))
	for i, s := range anns {
		envs[i] = s.raw
	}
	ingest := func(stuck bool) (rate float64, st natsapi.Stats) {
		cfg := nodetest.Config(b)
		cfg.NATS = &natsapi.Config{Addr: "0"}
		n := nodetest.Start(b, cfg)
		if stuck {
			nodetest.StuckPlugin(b, n.NATSAddr())
		}
		start := time.Now()
		if _, err := n.Ingest(context.Background(), envs); err != nil {
			b.Fatal(err)
		}
		rate = float64(len(envs)) / time.Since(start).Seconds()
		var s *view.Status
		wait.For(b, time.Minute, func() (err error) {
			if s, err = n.Status(context.Background()); err == nil && s.NATS.Lag != 0 {
				err = fmt.Errorf("fan-out behind: %+v", s.NATS)
			}
			return err // nil: everything went out, or was dropped with the plugin
		})
		if s.Log.Entries != uint64(len(envs)) {
			b.Fatalf("log holds %d of %d", s.Log.Entries, len(envs))
		}
		return rate, natsapi.Stats(*s.NATS)
	}
	b.ResetTimer()
	free, _ := ingest(false)
	stuck, st := ingest(true)
	b.StopTimer()
	b.ReportMetric(stuck, "ann/s")
	b.ReportMetric(free, "free/s")
	b.ReportMetric(stuck/free, "ratio")
	b.ReportMetric(float64(st.SlowConsumers), "cut")
	b.Logf("%d 1 KB announcements ingested with a plugin that never reads, against none", len(envs))
}
