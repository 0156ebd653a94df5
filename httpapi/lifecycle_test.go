package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/thingtracker/ttn/httpapi"
	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/view"
)

// blocking is a Backend whose /healthz answer waits to be released (or for
// its ctx), and whose feed never has an entry. The tests call nothing else.
type blocking struct {
	httpapi.Backend
	entered chan struct{} // a health request is being answered
	release chan struct{} // closed: health requests answer
}

func newBlocking() *blocking {
	return &blocking{entered: make(chan struct{}, 8), release: make(chan struct{})}
}

func (b *blocking) Last() uint64 { return 0 }

func (b *blocking) Wait(ctx context.Context, _ uint64) error {
	<-ctx.Done()
	return ctx.Err()
}

func (b *blocking) Health(ctx context.Context) (*view.Health, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
		return &view.Health{Status: "ok"}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// serve starts a server on an ephemeral loopback port.
func serve(t *testing.T, b httpapi.Backend) *httpapi.Server {
	t.Helper()
	s, err := httpapi.New(httpapi.Config{Addr: "127.0.0.1:0"}, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// inFlight sends GET path and returns its outcome on a channel: the
// status, or -1 when the request failed.
func inFlight(t *testing.T, c *http.Client, s *httpapi.Server, path string) <-chan int {
	out := make(chan int, 1)
	go func() {
		resp, err := c.Get("http://" + s.Addr() + path)
		if err != nil {
			out <- -1
			return
		}
		defer resp.Body.Close()
		if _, err := io.ReadAll(resp.Body); err != nil {
			out <- -1
			return
		}
		out <- resp.StatusCode
	}()
	return out
}

// openFeed opens a feed and returns once the server serves it: its headers
// have come, so its handler runs. It then reads the feed to its end in the
// background and sends how it ended: nil when the server ended it cleanly.
func openFeed(t *testing.T, c *http.Client, s *httpapi.Server) <-chan error {
	t.Helper()
	resp, err := c.Get("http://" + s.Addr() + "/v1/feed")
	if err != nil {
		t.Fatalf("opening a feed: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("opening a feed: status %d, want 200", resp.StatusCode)
	}
	out := make(chan error, 1)
	go func() {
		defer resp.Body.Close()
		_, err := io.ReadAll(resp.Body)
		out <- err
	}()
	return out
}

// within returns what ch sends, failing the test if it sends nothing for d.
func within[T any](t *testing.T, d time.Duration, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("after %v: %s", d, what)
		panic("unreachable")
	}
}

// TestCloseIsHardAndSafeTwice: Close cuts a request under way and ends a
// feed at once, returns once their handlers have, and may be called again.
func TestCloseIsHardAndSafeTwice(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b := newBlocking()
	s := serve(t, b)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	feed := inFlight(t, c, s, "/v1/feed")
	health := inFlight(t, c, s, "/healthz")
	<-b.entered
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := <-health; got != -1 {
		t.Errorf("a request under way at Close: status %d, want it cut", got)
	}
	if got := <-feed; got != http.StatusOK && got != -1 {
		t.Errorf("feed at Close: status %d", got)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := net.Dial("tcp", s.Addr()); err == nil {
		t.Error("still listening after Close")
	}
}

// TestLeaveIsGraceful: Leave stops listening and ends the feeds at once,
// but lets a request under way finish; Close after it is harmless.
//
// Both requests are under way before Leave: the feed's headers have come and
// the health handler has been entered. (A request the server has not read
// yet when Leave starts is not under way: net/http drops its connection.)
func TestLeaveIsGraceful(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const patience = 30 * time.Second // for each step, on a loaded machine
	b := newBlocking()
	s := serve(t, b)
	c := &http.Client{Timeout: 2 * patience, Transport: &http.Transport{DisableKeepAlives: true}}
	feed := openFeed(t, c, s)
	health := inFlight(t, c, s, "/healthz")
	within(t, patience, b.entered, "the health request never reached its handler")
	ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
	defer cancel()
	left := make(chan error, 1)
	go func() { left <- s.Leave(ctx) }()
	wait.For(t, patience, func() error {
		conn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			return nil
		}
		conn.Close()
		return errors.New("still listening during Leave")
	})
	if err := within(t, patience, feed, "the feed did not end at Leave"); err != nil {
		t.Errorf("feed at Leave: %v, want it ended cleanly", err)
	}
	select {
	case err := <-left:
		t.Fatalf("Leave returned (%v) while a request was under way", err)
	default:
	}
	close(b.release)
	if got := within(t, patience, health, "the request under way at Leave did not finish"); got != http.StatusOK {
		t.Errorf("the request under way at Leave: %d, want 200", got)
	}
	if err := within(t, patience, left, "Leave did not return"); err != nil {
		t.Errorf("Leave: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after Leave: %v", err)
	}
}

// TestLeaveHonoursContext: a request that does not finish holds Leave only
// until its ctx is done; then Leave cuts it and returns ctx's error.
func TestLeaveHonoursContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b := newBlocking()
	s := serve(t, b)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	health := inFlight(t, c, s, "/healthz")
	<-b.entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Leave(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Leave: %v, want context.DeadlineExceeded", err)
	}
	if got := <-health; got != -1 {
		t.Errorf("the request under way when Leave gave up: status %d, want it cut", got)
	}
}
