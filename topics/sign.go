package topics

import (
	"github.com/libp2p/go-libp2p/core/crypto"
)

// Sign sets p.Author from key, encodes p, seals it and returns the
// announcement after running it through Validate, so nothing this node signs
// could be refused by another. key must be Ed25519.
func Sign(key crypto.PrivKey, p *Payload) (*Announcement, error) {
	author, err := NodeID(key.GetPublic())
	if err != nil {
		return nil, err
	}
	return SignAs(key, author, p)
}

// SignAs signs p for author with key: Sign's, for an author who rotated to
// key (author is the node ID, which names the inception key).
func SignAs(key crypto.PrivKey, author string, p *Payload) (*Announcement, error) {
	p.Author = author
	b, err := p.Marshal()
	if err != nil {
		return nil, err
	}
	raw, err := Seal(key, AnnouncementType, b)
	if err != nil {
		return nil, err
	}
	return ValidateRotated("", raw, timeZero)
}
