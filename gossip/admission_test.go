package gossip_test

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/thingtracker/ttn/gossip"
)

// multistreamPartial is the start of multistream-select's header (a
// uvarint length, 19, then "/multistream/1.0.0\n"), never finished.
const multistreamPartial = "\x13/multistream/1.0"

// TestAdmissionHandshakeTimeout: a node closes an inbound connection that
// starts its handshake and never finishes it once HandshakeTimeout has
// passed, not after libp2p's 15 s.
func TestAdmissionHandshakeTimeout(t *testing.T) {
	victim := start(t, nil, func(c *gossip.Config) { c.GossipAddr = "off" })
	c, err := net.DialTimeout("tcp", tcpAddr(t, victim.node.Addrs()[0]), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, multistreamPartial); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.SetReadDeadline(start.Add(gossip.HandshakeTimeout + 5*time.Second))
	_, err = io.Copy(io.Discard, c) // until the node closes it (nil or a reset), or the deadline
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the node held a half-open connection past %v: %v", gossip.HandshakeTimeout+5*time.Second, err)
	}
	t.Logf("the node closed a half-open connection after %v", time.Since(start).Round(100*time.Millisecond))
}

// tcpAddr is the HOST:PORT of a libp2p TCP address with a peer ID.
func tcpAddr(t testing.TB, addr string) string {
	t.Helper()
	ai, err := lpeer.AddrInfoFromString(addr)
	if err != nil {
		t.Fatal(err)
	}
	a, err := manet.ToNetAddr(ai.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	return a.String()
}
