package gossip

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
)

// HandshakeTimeout is how long a node lets an inbound connection take its
// handshake, for the tests that hold one open.
const HandshakeTimeout = handshakeTimeout

// AdmissionLimits describes the admission limits, for the benchmark that
// prints its configuration.
func AdmissionLimits() string {
	return fmt.Sprintf("handshake timeout %v; handshaking inbound %d (outbound %d); inbound %d, outbound %d; "+
		"connections per IPv4 /32 %d, /24 %d, /16 %d; per IPv6 /56 %d, /48 %d; connection rate per address %.1f/s, burst %d",
		handshakeTimeout, handshakeInbound, handshakeOutbound, inboundConns, outboundConns,
		connsPerIP, connsPer24, connsPer16, connsPer56, connsPer48, connRatePerIP, connBurstPerIP)
}

// Handshaking returns the inbound connections n's resource manager counts
// in their handshake (the transient scope), and all its inbound
// connections.
func Handshaking(n *Node) (handshaking, inbound int) {
	rm := n.host.Network().ResourceManager()
	rm.ViewTransient(func(s network.ResourceScope) error {
		handshaking = s.Stat().NumConnsInbound
		return nil
	})
	rm.ViewSystem(func(s network.ResourceScope) error {
		inbound = s.Stat().NumConnsInbound
		return nil
	})
	return handshaking, inbound
}
