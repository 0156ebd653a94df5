package gossip

import (
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// admissionOptions are the host's limits on who may connect, and how many
// at once: the resource manager.
func admissionOptions() ([]libp2p.Option, error) {
	rm, err := resourceManager()
	if err != nil {
		return nil, err
	}
	return []libp2p.Option{libp2p.ResourceManager(rm)}, nil
}

// resourceManager is libp2p's default resource manager with a limit on
// sync streams, so that serving history cannot crowd out gossip.
func resourceManager() (network.ResourceManager, error) {
	limits := rcmgr.DefaultLimits
	limits.AddProtocolLimit(SyncProtocol,
		rcmgr.BaseLimit{StreamsInbound: 16, StreamsOutbound: 16, Streams: 32, Memory: 32 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 8, StreamsOutbound: 8, Streams: 16, Memory: 16 << 20})
	limits.AddProtocolPeerLimit(SyncProtocol,
		rcmgr.BaseLimit{StreamsInbound: 2, StreamsOutbound: 4, Streams: 6, Memory: 8 << 20},
		rcmgr.BaseLimitIncrease{})
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()))
}
