// Package nodetest runs real nodes for the tests of the packages around the
// node (its APIs, the examples): on loopback, in temporary dirs, with shrunk
// timings, stopped when the test ends.
package nodetest

import (
	"context"
	"testing"
	"time"

	"github.com/thingtracker/ttn/node"
)

// Config returns the configuration of a node on loopback with ephemeral
// ports and shrunk timings, in a temporary dir, joining join.
func Config(t testing.TB, join ...string) node.Config {
	return node.Config{
		Dir: t.TempDir(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}, GossipAddr: "127.0.0.1:0", Join: join,
		Heartbeat: 100 * time.Millisecond, ProbeInterval: 200 * time.Millisecond,
		DiscoveryInterval: time.Second, ReadyTimeout: 5 * time.Second,
	}
}

// Start starts a node, shuts it down when the test ends, and waits until it
// is ready.
func Start(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	if err := n.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}
