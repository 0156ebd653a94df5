package gossip

import (
	"context"
	"fmt"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// transport is memberlist's own TCP and UDP transport, except that its
// outgoing TCP connections end when the node stops: memberlist's Join
// waits on each for up to its TCP timeout (10 s), so a join to an address
// that accepts and never answers held Close that long.
type transport struct {
	*memberlist.NetTransport
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	conns map[net.Conn]bool // open outgoing connections; nil once stopped
}

// newTransport binds addr:port (port 0: an ephemeral one, the same for
// TCP and UDP, retried as memberlist does when the pair is taken).
func newTransport(addr string, port int, logger *log.Logger) (*transport, error) {
	var nt *memberlist.NetTransport
	var err error
	for range 10 {
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{addr}, BindPort: port, Logger: logger})
		if err == nil || port != 0 || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("memberlist transport: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &transport{NetTransport: nt, ctx: ctx, cancel: cancel, conns: make(map[net.Conn]bool)}, nil
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", a.Addr)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns == nil {
		c.Close()
		return nil, net.ErrClosed
	}
	t.conns[c] = true
	return &trackedConn{Conn: c, t: t}, nil
}

// DialTimeout implements memberlist.Transport.
func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// stop ends the dials under way (the transport's and the members' libp2p
// dials, which use its context) and the outgoing connections, and refuses
// new ones.
func (t *transport) stop() {
	t.cancel()
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		c.Close()
	}
	t.conns = nil
}

type trackedConn struct {
	net.Conn
	t *transport
}

func (c *trackedConn) Close() error {
	c.t.mu.Lock()
	delete(c.t.conns, c.Conn)
	c.t.mu.Unlock()
	return c.Conn.Close()
}
