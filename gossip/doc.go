// Package gossip is the node's network: a go-libp2p host (TCP, Noise,
// yamux), GossipSub keyed by tracker topics, membership through hashicorp
// memberlist, and discovery records.
//
// Every announcement is validated before GossipSub forwards it, cheapest
// check first: size, decoding and canonical form, an author the node
// ignores (Ignore: see Config.Standing), already stored (Ignore, without
// verifying), an author over its budget (Ignore), signature, author and
// owner and topic, strict payload, clock, then the chain state of the
// Store, which also stores it. Reject, which costs the sending peer score,
// is only for what is invalid on every node. Messages carry no pubsub
// signature (StrictNoSign): the envelope proves authorship, and a message's
// ID is the SHA-256 of its data, the announcement ID.
//
// Nodes find each other through memberlist: a member's name is its peer ID
// and its metadata a signed libp2p peer record, used only as a dial hint.
// The package imports topics, never the log: it declares the Store it needs.
package gossip
