package gossip

import (
	"math"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/sec"
	tpt "github.com/libp2p/go-libp2p/core/transport"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/x/rate"
	"go.uber.org/fx"
)

// Admission: who may open a connection, and for how long a connection may
// take its handshake. An inbound connection holds a slot in the resource
// manager's transient scope from the moment it is accepted until its
// handshake ends; libp2p's defaults (a 15 s handshake, about 80 transient
// slots on a machine with 24 GiB, 32 on a small one, 8 connections per
// IPv4 address) let ten addresses that open connections and never finish
// them fill the room at once and keep every new peer out for 15 s, again
// whenever they have saved up their rate (measured: BenchmarkAdmission-
// UnderAttack with these lines reverted waits 15.5 s). An attacker's hold on the handshake room
// is bounded twice: by the subnet caps (at most connsPer16 from one /16,
// half the room), and by rate × time (an address opens connRatePerIP a
// second, each held at most handshakeTimeout: one slot per address held
// for good). Loopback is exempt from both, as in libp2p, so that tests may
// run many nodes on 127.0.0.1.
//
// What it costs: more than connsPer24 peers in one /24 (a data centre's
// LAN, with MaxPeers raised) are refused past the cap; a peer that shares
// a /16 with an attacker may be kept out with it.
const (
	// A Noise+yamux handshake is about three round trips after TCP's
	// own: under a second at a 300 ms round trip. Five seconds leave a
	// slow home link room for a lost packet's retransmission (Linux's
	// first RTO is 1 s), and hold a half-open connection a third as long
	// as libp2p's 15 s.
	handshakeTimeout = 5 * time.Second

	// The transient scope: connections in their handshake.
	handshakeInbound  = 256 // one fd and a goroutine each: cheap; twice connsPer16
	handshakeOutbound = 128 // our own dials in flight: bootstrap, joins, MaxPeers at once
	handshakeConns    = handshakeInbound + handshakeOutbound

	// The system scope: every connection, in its handshake or established.
	inboundConns  = 2 * handshakeInbound         // a full handshake room leaves as many for peers
	outboundConns = 256                          // MaxPeers' default four times over
	totalConns    = inboundConns + outboundConns // neither direction crowds out the other

	// Connections at once from one subnet, either direction, established
	// or not.
	connsPerIP = 8   // libp2p's default: the addresses swarm dials to a peer at once
	connsPer24 = 64  // MaxPeers' default: one LAN may fill our peer table, not more
	connsPer16 = 128 // one provider's block: half the handshake room
	connsPer56 = 8   // an IPv6 home's delegated prefix is one address (libp2p's default)
	connsPer48 = 64  // an IPv6 site, as a /24 (libp2p's default)

	// Connections opened per second per address, either direction:
	// libp2p's defaults, spelled out since the bound above rests on them.
	connRatePerIP  = 0.2 // a peer redials every five seconds at most ...
	connBurstPerIP = 16  // ... after a first burst: two rounds of swarm's parallel dials
	connRatePer48  = 0.5 // an IPv6 site: a few hosts' worth ...
	connBurstPer48 = 80  // ... and five hosts' bursts
)

// admissionOptions are the host's limits on who may connect, how many at
// once, and for how long a connection may take its handshake.
func admissionOptions() ([]libp2p.Option, error) {
	rm, err := resourceManager()
	if err != nil {
		return nil, err
	}
	return []libp2p.Option{
		libp2p.ResourceManager(rm),
		// libp2p.New builds its upgrader in fx with the default accept
		// timeout and no option to change it; this replaces it with one
		// built from the same parts (libp2p's config.addTransports) and
		// handshakeTimeout.
		libp2p.WithFxOption(fx.Decorate(fx.Annotate(boundedUpgrader, fx.ParamTags(`name:"security"`)))),
	}, nil
}

// boundedUpgrader is libp2p's connection upgrader with handshakeTimeout.
func boundedUpgrader(security []sec.SecureTransport, muxers []tptu.StreamMuxer, psk pnet.PSK,
	rm network.ResourceManager, gater connmgr.ConnectionGater) (tpt.Upgrader, error) {
	return tptu.New(security, muxers, psk, rm, gater, tptu.WithAcceptTimeout(handshakeTimeout))
}

// resourceManager is libp2p's resource manager with the connection limits
// above (memory, streams and file descriptors stay scaled to the machine),
// and a limit on sync streams, so that serving history cannot crowd out
// gossip.
func resourceManager() (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	scaling.AddProtocolLimit(SyncProtocol,
		rcmgr.BaseLimit{StreamsInbound: 16, StreamsOutbound: 16, Streams: 32, Memory: 32 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 8, StreamsOutbound: 8, Streams: 16, Memory: 16 << 20})
	scaling.AddProtocolPeerLimit(SyncProtocol,
		rcmgr.BaseLimit{StreamsInbound: 2, StreamsOutbound: 4, Streams: 6, Memory: 8 << 20},
		rcmgr.BaseLimitIncrease{})
	limits := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			ConnsInbound: inboundConns, ConnsOutbound: outboundConns, Conns: totalConns,
		},
		Transient: rcmgr.ResourceLimits{
			ConnsInbound: handshakeInbound, ConnsOutbound: handshakeOutbound, Conns: handshakeConns,
		},
	}.Build(scaling.AutoScale())

	loopback4, loopback6 := netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")
	rates := &rate.Limiter{
		NetworkPrefixLimits: []rate.PrefixLimit{
			{Prefix: loopback4}, // a zero Limit is no limit
			{Prefix: loopback6},
		},
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{
				{PrefixLength: 32, Limit: rate.Limit{RPS: connRatePerIP, Burst: connBurstPerIP}},
			},
			IPv6SubnetLimits: []rate.SubnetLimit{
				{PrefixLength: 56, Limit: rate.Limit{RPS: connRatePerIP, Burst: connBurstPerIP}},
				{PrefixLength: 48, Limit: rate.Limit{RPS: connRatePer48, Burst: connBurstPer48}},
			},
			GracePeriod: time.Minute, // how long a full bucket is kept: libp2p's default
		},
	}
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits),
		rcmgr.WithNetworkPrefixLimit(
			[]rcmgr.NetworkPrefixLimit{{Network: loopback4, ConnCount: math.MaxInt}},
			[]rcmgr.NetworkPrefixLimit{{Network: loopback6, ConnCount: math.MaxInt}}),
		rcmgr.WithLimitPerSubnet(
			[]rcmgr.ConnLimitPerSubnet{
				{PrefixLength: 32, ConnCount: connsPerIP},
				{PrefixLength: 24, ConnCount: connsPer24},
				{PrefixLength: 16, ConnCount: connsPer16},
			},
			[]rcmgr.ConnLimitPerSubnet{
				{PrefixLength: 56, ConnCount: connsPer56},
				{PrefixLength: 48, ConnCount: connsPer48},
			}),
		rcmgr.WithConnRateLimiters(rates))
}
