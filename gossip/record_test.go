package gossip

import (
	"testing"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	ma "github.com/multiformats/go-multiaddr"
)

// TestPeerRecordSigner: a member's record is believed only when signed by
// the peer it names; anyone else's signature over it is refused.
func TestPeerRecordSigner(t *testing.T) {
	key := func() (crypto.PrivKey, peer.ID) {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := peer.IDFromPrivateKey(k)
		return k, id
	}
	owner, ownerID := key()
	forger, _ := key()
	addr := ma.StringCast("/ip4/127.0.0.1/tcp/7601")
	meta := func(signer crypto.PrivKey) []byte {
		env, err := record.Seal(&peer.PeerRecord{PeerID: ownerID, Addrs: []ma.Multiaddr{addr}, Seq: 1}, signer)
		if err != nil {
			t.Fatal(err)
		}
		b, err := env.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if id, addrs, err := openPeerRecord(&memberlist.Node{Name: ownerID.String(), Meta: meta(owner)}); err != nil || id != ownerID || len(addrs) != 1 {
		t.Fatalf("the owner's record: %v %v %v", id, addrs, err)
	}
	if _, _, err := openPeerRecord(&memberlist.Node{Name: ownerID.String(), Meta: meta(forger)}); err == nil {
		t.Fatal("a record of the owner signed by another key was believed")
	}
}
