// Package node is the running node: it opens a data dir (datadir), puts it
// on the network (gossip: libp2p GossipSub, memberlist, the sync protocol),
// and serves it to the CLI (control), to plugins (natsapi) and over HTTP
// (httpapi), implementing the interfaces each of them declares. It owns the
// node's loops: announcing its own entries, re-announcing discovery records,
// history sync with backoff, anti-entropy, following nodes.
//
// New starts a node, WaitReady waits for its peers, Leave stops it
// gracefully and Close at once; Run does all of that as the commands do.
// A Node's methods may be called concurrently.
package node
