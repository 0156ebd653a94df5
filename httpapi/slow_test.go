package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/view"

	"github.com/thingtracker/ttn/httpapi"
	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/topics"
)

// TestFeedKeepAlive: a silent feed sends a comment every KeepAlive.
func TestFeedKeepAlive(t *testing.T) {
	cfg := nodetest.Config(t)
	cfg.HTTP = &httpapi.Config{Addr: "0", KeepAlive: 100 * time.Millisecond}
	n := nodetest.Start(t, cfg)
	resp, err := http.Get("http://" + n.HTTPAddr() + "/v1/feed")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines, done := make(chan string), make(chan struct{})
	defer close(done) // before the body is closed: the reader then ends
	go func() {
		s := bufio.NewScanner(resp.Body)
		for s.Scan() {
			select {
			case lines <- s.Text():
			case <-done:
				return
			}
		}
		close(lines)
	}()
	for deadline := time.After(5 * time.Second); ; {
		select {
		case l := <-lines:
			if l == ": keep-alive" {
				return
			}
		case <-deadline:
			t.Fatal("no keep-alive in 5 s")
		}
	}
}

// TestStuckFeedClient: a feed client that stops reading is dropped after
// WriteTimeout, freeing its place, and the node goes on.
func TestStuckFeedClient(t *testing.T) {
	ctx := context.Background()
	cfg := nodetest.Config(t)
	cfg.HTTP = &httpapi.Config{Addr: "0", MaxFeeds: 1, WriteTimeout: 2 * time.Second} // long enough to be seen busy on a loaded machine
	n := nodetest.Start(t, cfg)
	tr, err := n.CreateTracker(ctx, topics.TrackerInfo{Name: "t"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3000; i += 500 {
		var ts []topics.Thing
		for j := i; j < i+500; j++ {
			ts = append(ts, topics.Thing{ID: fmt.Sprint(j), Title: "A Thing", Version: "1", Description: strings.Repeat("words ", 150)})
		}
		if _, err := n.Publish(ctx, tr.ID, ts); err != nil {
			t.Fatal(err)
		}
	}

	// The stuck client asks for everything and never reads.
	c, err := net.Dial("tcp", n.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET /v1/feed?since=0 HTTP/1.1\r\nHost: x\r\n\r\n")

	// Its place is taken until the server gives up on it.
	// (The first try comes before the server has read its request.)
	busy := false
	wait.For(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+n.HTTPAddr()+"/v1/feed", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			busy = true
		}
		if resp.StatusCode != http.StatusOK || !busy {
			return fmt.Errorf("second client: %d", resp.StatusCode)
		}
		return nil
	})
	var h view.Health
	getJSON(t, n, "/healthz", &h)
	if h.Status != "ok" {
		t.Fatalf("health %+v", h)
	}
}
