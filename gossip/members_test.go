package gossip_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/internal/wait"

	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/topics"
)

// TestRejoinAfterRestart: a node remembers its members and rejoins them
// after a restart, with no --join.
func TestRejoinAfterRestart(t *testing.T) {
	checkLeaks(t)
	a := start(t, nil, nil)
	peers := datadir.Peers{Dir: t.TempDir()} // DIR/peers, as a node keeps it
	withPeers := func(c *gossip.Config) { c.Peers = peers }
	b := start(t, []string{a.node.GossipAddr()}, withPeers)
	wait.For(t, 10*time.Second, func() error {
		if len(b.node.Peers()) != 1 || len(a.node.Members()) != 1 {
			return fmt.Errorf("b has %d peers, a %d members", len(b.node.Peers()), len(a.node.Members()))
		}
		return nil
	})
	b.node.Close() // saves the peers file
	b.log.Close()

	b2 := start(t, nil, withPeers) // no Join: only the peers file
	wait.For(t, 10*time.Second, func() error {
		for _, m := range b2.node.Members() {
			if m.ID == a.node.ID() && m.State == "alive" && len(b2.node.Peers()) == 1 {
				return nil
			}
		}
		return fmt.Errorf("restarted node has not rejoined: members %v", b2.node.Members())
	})
}

// TestKeyring: only nodes with a key in common join each other.
func TestKeyring(t *testing.T) {
	checkLeaks(t)
	key := bytes.Repeat([]byte{1}, 32)
	other := bytes.Repeat([]byte{2}, 32)
	a := start(t, nil, func(c *gossip.Config) { c.Keyring = [][]byte{key} })
	good := start(t, []string{a.node.GossipAddr()}, func(c *gossip.Config) { c.Keyring = [][]byte{key} })
	bad := start(t, []string{a.node.GossipAddr()}, func(c *gossip.Config) { c.Keyring = [][]byte{other} })
	none := start(t, []string{a.node.GossipAddr()}, nil)
	wait.For(t, 10*time.Second, func() error {
		if len(good.node.Members()) != 1 {
			return fmt.Errorf("the node with the key has %d members", len(good.node.Members()))
		}
		return nil
	})
	// The others' joins ended (failed) before start returned. A late node
	// with the key joins a now: a join is a full state exchange, so its
	// members are a's, and show whether a took in anyone it should not.
	late := start(t, []string{a.node.GossipAddr()}, func(c *gossip.Config) { c.Keyring = [][]byte{key} })
	wait.For(t, 10*time.Second, func() error {
		if len(late.node.Members()) != 2 || len(a.node.Members()) != 2 {
			return fmt.Errorf("the late node has %d members, a has %d", len(late.node.Members()), len(a.node.Members()))
		}
		return nil
	})
	for name, p := range map[string]*peer{"wrong key": bad, "no key": none} {
		if m := p.node.Members(); len(m) != 0 {
			t.Errorf("node with %s joined: %v", name, m)
		}
	}
	for _, p := range []*peer{a, late} {
		for _, m := range p.node.Members() {
			if m.ID == bad.node.ID() || m.ID == none.node.ID() {
				t.Errorf("a node without the key is a member: %v", p.node.Members())
			}
		}
	}
}

// TestDeadNodeNoticed: a node that stops without leaving is found dead.
func TestDeadNodeNoticed(t *testing.T) {
	checkLeaks(t)
	a := start(t, nil, nil)
	b := start(t, []string{a.node.GossipAddr()}, nil)
	c := start(t, []string{a.node.GossipAddr()}, nil)
	wait.For(t, 10*time.Second, func() error {
		if len(a.node.Members()) != 2 {
			return fmt.Errorf("a has %d members", len(a.node.Members()))
		}
		return nil
	})
	c.stop() // Close, not Leave: a crash as far as the others can tell
	wait.For(t, 20*time.Second, func() error {
		for _, p := range []*peer{a, b} {
			if p.node.Stats().Deaths != 1 {
				return fmt.Errorf("deaths seen: %d", p.node.Stats().Deaths)
			}
		}
		return nil
	})
	for _, m := range a.node.Members() {
		if m.ID == c.node.ID() && m.State != "dead" {
			t.Errorf("dead member shown as %s", m.State)
		}
	}
	ev := a.node.MemberEvents()
	if len(ev) == 0 || ev[len(ev)-1].Kind != "death" || ev[len(ev)-1].ID != c.node.ID() {
		t.Errorf("events: %v", ev)
	}
	// A graceful leave is a leave, not a death.
	if err := b.node.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if st := a.node.Stats(); st.Leaves != 1 || st.Deaths != 1 {
			return fmt.Errorf("a saw %d leaves, %d deaths", st.Leaves, st.Deaths)
		}
		return nil
	})
}

// tarpit accepts TCP connections and never answers, as a saved peer's
// address now taken by something else, or filtered, can: memberlist waits
// its whole TCP timeout (10 s) on each. close ends it and its connections.
func tarpit(t *testing.T) (addr string, close func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().String(), func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
}

// TestJoinDoesNotWaitOnDeadAddresses: a node given four addresses that never
// answer and one live member starts and joins the member without waiting
// for the others one after the other (4 × 10 s).
func TestJoinDoesNotWaitOnDeadAddresses(t *testing.T) {
	checkLeaks(t)
	a := start(t, nil, nil)
	var join []string
	var closers []func()
	for range 4 {
		addr, close := tarpit(t)
		join, closers = append(join, addr), append(closers, close)
	}
	join = append(join, a.node.GossipAddr())
	for _, close := range closers {
		defer close() // after b has closed: its joins must not wait for this
	}
	began := time.Now()
	b := start(t, join, nil)
	took := time.Since(began)
	// Sequential joins would take at least 40 s; a generous bound that
	// noise cannot reach.
	if took > 20*time.Second {
		t.Fatalf("start took %v with four dead addresses", took)
	}
	wait.For(t, 10*time.Second, func() error {
		if len(b.node.Members()) != 1 || len(a.node.Members()) != 1 {
			return fmt.Errorf("b has %d members, a %d", len(b.node.Members()), len(a.node.Members()))
		}
		return nil
	})
	// The joins still waiting on the dead addresses end with the node, not
	// at memberlist's 10 s TCP timeout.
	began = time.Now()
	b.stop()
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("Close took %v while joins waited on dead addresses", took)
	}
}

// TestBootstrapWithoutMembership: with memberlist off, a node reaches the
// network through its bootstrap peer, and reconnects when that peer comes
// back after a restart.
func TestBootstrapWithoutMembership(t *testing.T) {
	checkLeaks(t)
	off := func(c *gossip.Config) { c.GossipAddr = "off" }
	a := start(t, nil, off)
	addr := a.node.Addrs()[0]
	b := start(t, nil, func(c *gossip.Config) { off(c); c.Bootstrap = []string{addr} })
	connected := func() error {
		if len(b.node.Peers()) != 1 || b.node.Peers()[0] != a.node.ID() {
			return fmt.Errorf("b's peers: %v", b.node.Peers())
		}
		return nil
	}
	wait.For(t, 10*time.Second, connected)

	// a restarts on the same address, with the same key.
	a.stop()
	listen, _, _ := strings.Cut(addr, "/p2p/")
	a2 := launch(t, a.key, openLog(t), nil, func(c *gossip.Config) { off(c); c.Listen = []string{listen} })
	if a2.node.ID() != a.node.ID() {
		t.Fatal("restarted with another ID")
	}
	wait.For(t, 20*time.Second, connected)
}

// TestGossipPortInUse: a second node on a memberlist port already taken
// fails to start with an error, and does not crash.
func TestGossipPortInUse(t *testing.T) {
	checkLeaks(t)
	a := start(t, nil, nil)
	l := openLog(t)
	defer l.Close()
	_, err := gossip.New(context.Background(), gossip.Config{Key: newKey(t), Store: store{l},
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}, GossipAddr: a.node.GossipAddr()})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("a node on a taken gossip port: %v", err)
	}
}

// TestNewHonoursContext: New, held by joins that never answer, gives up
// when its ctx is done, with ctx's error and nothing left running; a ctx
// done before New is refused at once.
func TestNewHonoursContext(t *testing.T) {
	checkLeaks(t)
	addr, close := tarpit(t)
	defer close()
	l := openLog(t)
	defer l.Close()
	cfg := gossip.Config{Key: newKey(t), Store: store{l}, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		GossipAddr: "127.0.0.1:0", Join: []string{addr}}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	n, err := gossip.New(ctx, cfg)
	if err == nil {
		n.Close()
		t.Fatal("New returned a node after its ctx was done")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("New: %v, want context.DeadlineExceeded", err)
	}
	// The join alone would hold New for memberlist's 10 s TCP timeout.
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("New took %v", took)
	}

	done, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := gossip.New(done, cfg); !errors.Is(err, context.Canceled) {
		if n != nil {
			n.Close()
		}
		t.Fatalf("New with a cancelled ctx: %v, want context.Canceled", err)
	}
}

// TestLeaveHonoursContext: Leave with a ctx already done returns its error
// at once and still closes the node; Close after it, and again, is harmless.
func TestLeaveHonoursContext(t *testing.T) {
	checkLeaks(t)
	a := start(t, nil, nil)
	b := start(t, []string{a.node.GossipAddr()}, nil)
	wait.For(t, 10*time.Second, func() error {
		if len(b.node.Members()) != 1 {
			return fmt.Errorf("b has %d members", len(b.node.Members()))
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	began := time.Now()
	if err := b.node.Leave(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Leave with a cancelled ctx: %v, want context.Canceled", err)
	}
	if took := time.Since(began); took > time.Second {
		t.Fatalf("Leave with a cancelled ctx took %v", took)
	}
	if err := b.node.Follow(topics.TrackerID{1}); !errors.Is(err, gossip.ErrClosed) {
		t.Fatalf("Follow after Leave: %v, want ErrClosed", err)
	}
	for range 2 {
		if err := b.node.Close(); err != nil {
			t.Fatalf("Close after Leave: %v", err)
		}
	}
}
