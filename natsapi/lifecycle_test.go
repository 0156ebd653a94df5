package natsapi_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/view"
)

// blocking is a Backend whose status answer waits to be released (or for
// its ctx), and whose log stays empty. The tests call nothing else.
type blocking struct {
	natsapi.Backend
	entered chan struct{} // a status request is being answered
	release chan struct{} // closed: status requests answer
}

func newBlocking() *blocking {
	return &blocking{entered: make(chan struct{}, 8), release: make(chan struct{})}
}

func (b *blocking) Last() uint64 { return 0 }

func (b *blocking) Wait(ctx context.Context, _ uint64) error {
	<-ctx.Done()
	return ctx.Err()
}

func (b *blocking) Status(ctx context.Context) (*view.Status, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
		return &view.Status{Node: "ok"}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// waitEntered waits until a status request is being answered; it fails t
// if the request ended before.
func (b *blocking) waitEntered(t *testing.T, answer <-chan error) {
	t.Helper()
	select {
	case <-b.entered:
	case err := <-answer:
		t.Fatalf("the status request ended (%v) before it reached the backend", err)
	}
}

// serve starts a server on an ephemeral loopback port.
func serve(t *testing.T, b natsapi.Backend) *natsapi.Server {
	t.Helper()
	s, err := natsapi.New(context.Background(), natsapi.Config{Addr: "127.0.0.1:0"}, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// askStatus sends a status request and returns its outcome on a channel:
// nil for an answer, else the error.
func askStatus(t *testing.T, s *natsapi.Server) <-chan error {
	t.Helper()
	nc, err := nats.Connect("nats://"+s.Addr(), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan error, 1)
	go func() {
		defer nc.Close()
		m, err := nc.Request(natsapi.APIPrefix+"status", []byte("{}"), 10*time.Second)
		if err == nil && m.Header.Get("Nats-Service-Error") != "" {
			err = errors.New(m.Header.Get("Nats-Service-Error"))
		}
		out <- err
	}()
	return out
}

// TestNewHonoursContext: New with a ctx already done starts nothing and
// returns ctx's error.
func TestNewHonoursContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := natsapi.New(ctx, natsapi.Config{Addr: "127.0.0.1:0"}, newBlocking())
	if err == nil {
		s.Close()
		t.Fatal("New returned a server with its ctx done")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("New: %v, want context.Canceled", err)
	}
}

// TestCloseIsHardAndSafeTwice: Close cancels a request under way, stops
// listening, and may be called again.
func TestCloseIsHardAndSafeTwice(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b := newBlocking()
	s := serve(t, b)
	addr := s.Addr()
	answer := askStatus(t, s)
	b.waitEntered(t, answer)
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if err := <-answer; err == nil {
		t.Error("a request under way at Close was answered")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("still listening after Close")
	}
}

// TestLeaveIsGraceful: Leave answers a request under way before it
// returns; Close after it is harmless.
func TestLeaveIsGraceful(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b := newBlocking()
	s := serve(t, b)
	answer := askStatus(t, s)
	b.waitEntered(t, answer)
	probe, err := nats.Connect("nats://"+s.Addr(), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	left := make(chan error, 1)
	go func() { left <- s.Leave(context.Background()) }()
	// Leave has begun once the API takes no new request.
	wait.For(t, 5*time.Second, func() error {
		if _, err := probe.Request(natsapi.APIPrefix+"status", []byte("{}"), time.Second); !errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("a new request during Leave: %v, want no responders", err)
		}
		return nil
	})
	select {
	case err := <-left:
		t.Fatalf("Leave returned (%v) while a request was under way", err)
	default:
	}
	close(b.release)
	if err := <-answer; err != nil {
		t.Errorf("the request under way at Leave: %v, want an answer", err)
	}
	if err := <-left; err != nil {
		t.Errorf("Leave: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after Leave: %v", err)
	}
}

// TestLeaveHonoursContext: a request that does not finish holds Leave only
// until its ctx is done; then Leave cancels it and returns ctx's error.
func TestLeaveHonoursContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b := newBlocking()
	s := serve(t, b)
	answer := askStatus(t, s)
	b.waitEntered(t, answer)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Leave(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Leave: %v, want context.DeadlineExceeded", err)
	}
	if err := <-answer; err == nil {
		t.Error("a request Leave gave up on was answered")
	}
}
