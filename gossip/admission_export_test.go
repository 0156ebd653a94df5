package gossip

import "fmt"

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
