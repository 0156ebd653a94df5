package natsapi_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thingtracker/ttn/internal/wait"

	"github.com/nats-io/nats.go"

	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/natsapi"
)

// buildNATSServer builds the nats-server command of the version go.mod
// pins, with the test's own race setting (so the build reuses the cache).
func buildNATSServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nats-server")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, "github.com/nats-io/nats-server/v2")...).CombinedOutput()
	if err != nil {
		t.Fatalf("building nats-server: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a loopback port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestLeafnode: a standalone nats-server, as a NATS cluster elsewhere would
// be, receives the node's announcements through a leafnode connection, and
// its clients can ask the node questions but cannot publish through it. The
// node has no client listener of its own here: the cluster is where its
// plugins are.
func TestLeafnode(t *testing.T) {
	bin := buildNATSServer(t)
	clientPort, leafPort := freePort(t), freePort(t)
	// The README's example configuration, on free ports.
	example, err := os.ReadFile("../examples/nats/hub.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "hub.conf")
	os.WriteFile(conf, []byte(strings.NewReplacer(":4222", fmt.Sprintf(":%d", clientPort), ":7422", fmt.Sprintf(":%d", leafPort)).Replace(string(example))), 0o600)
	hub := exec.Command(bin, "-c", conf)
	var hubLog strings.Builder
	hub.Stdout, hub.Stderr = &hubLog, &hubLog
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hub.Process.Kill()
		hub.Wait()
		if t.Failed() {
			t.Logf("nats-server log:\n%s", hubLog.String())
		}
	})
	var remote *nats.Conn
	wait.For(t, 10*time.Second, func() (err error) {
		remote, err = nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", clientPort))
		return err
	})
	t.Cleanup(remote.Close)

	n := nodetest.Start(t, nodeConfig(t, &natsapi.Config{Addr: "off", Leaf: []string{fmt.Sprintf("nats://leaf:change-me@127.0.0.1:%d", leafPort)}}))
	tr := createTracker(t, n, "t")

	// A request from the cluster reaches the node once the leafnode is up.
	wait.For(t, 10*time.Second, func() error {
		_, err := remote.Request("ttn.api.status", nil, time.Second)
		return err
	})
	sub, err := remote.SubscribeSync(natsapi.AnnouncePrefix + tr.String() + ".>")
	if err != nil {
		t.Fatal(err)
	}
	remote.Flush()
	// The subscription's interest reaches the node asynchronously: publish
	// until one gets through, then the rest.
	i := 0
	wait.For(t, 10*time.Second, func() error {
		publish(t, n, tr, things(fmt.Sprintf("probe%d", i), 1))
		i++
		_, err := sub.NextMsg(300 * time.Millisecond)
		return err
	})
	publish(t, n, tr, things("leaf", 10))
	for range 10 {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		checkMessage(t, m)
	}

	// Publishing through the node stops at the leafnode.
	last := n.Log.Last()
	if _, err := remote.Request("ttn.api.publish", fmt.Appendf(nil, `{"tracker":%q,"thing":{"id":"x","title":"X"}}`, tr), 500*time.Millisecond); err == nil {
		t.Fatal("a publish request from the cluster got an answer")
	}
	if n.NATSAddr() != "" {
		t.Fatalf("the node listens on %s, want no client listener", n.NATSAddr())
	}
	if n.Log.Last() != last {
		t.Fatalf("log went from %d to %d", last, n.Log.Last())
	}
	if st, _ := n.Status(context.Background()); st.NATS.Leafnodes != 1 {
		t.Fatalf("leafnodes %d, want 1", st.NATS.Leafnodes)
	}
}
