// Package nodetest runs real nodes for the tests of the packages around the
// node (its APIs, the examples): on loopback, in temporary dirs, with shrunk
// timings, stopped when the test ends.
package nodetest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/node"
	"github.com/thingtracker/ttn/view"
)

// Config returns the configuration of a node on loopback with ephemeral
// ports and shrunk timings, in a temporary dir, joining join.
func Config(t testing.TB, join ...string) node.Config {
	return node.Config{
		Dir: t.TempDir(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}, GossipAddr: "127.0.0.1:0", Join: join,
		Heartbeat: 100 * time.Millisecond, ProbeInterval: 200 * time.Millisecond,
		DiscoveryInterval: time.Second, ReadyTimeout: 5 * time.Second,
		// Private follows: the tests count the entries that reach a node,
		// and a follower would add its own node record listing them
		// (node.TestFollowsPublished covers the public default).
		PrivateFollows: true,
	}
}

// Start starts a node, shuts it down when the test ends, and waits until it
// is ready.
func Start(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	n, err := node.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Leave(context.Background()) })
	if err := n.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// StuckPlugin connects to a NATS server at addr, subscribes to every
// announcement and never reads again. The connection closes when the test
// ends.
func StuckPlugin(t testing.TB, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.(*net.TCPConn).SetReadBuffer(4096)
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("server greeting %q: %v", line, err)
	}
	fmt.Fprintf(c, "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":true}\r\nSUB %s> 1\r\nPING\r\n", natsapi.AnnouncePrefix)
	if line, err := r.ReadString('\n'); err != nil || line != "PONG\r\n" {
		t.Fatalf("after SUB: %q: %v", line, err)
	}
}

// WaitIndexed waits until n's search index has read all its log holds.
func WaitIndexed(t testing.TB, n *node.Node) {
	t.Helper()
	wait.For(t, 15*time.Second, func() error {
		res, err := n.Search(context.Background(), view.SearchQuery{Limit: 1})
		if err != nil {
			return err
		}
		if res.Behind != 0 {
			return fmt.Errorf("the search index is %d entries behind", res.Behind)
		}
		return nil
	})
}
