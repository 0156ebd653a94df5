// Package trust computes what every node is to self from the trust records
// self holds: GnuPG's web of trust, depth-limited (DESIGN.md, "Trust"). It is
// pure: no I/O, the standard library only, node IDs as plain strings.
//
// # The rule
//
// The input is self's node ID, a depth limit (Config.Depth, --trust-depth,
// 3 by default), self's local block list (never announced), and trust
// records (author, subject, level, seq) with level verified, trusted,
// marginal, distrusted or none. The record with the highest seq stands for
// each (author, subject) pair; of two with the same seq (a forked chain) the
// more cautious stands: distrusted, then none, marginal, trusted, verified.
// A standing none withdraws the author's earlier records on the subject.
// Records by an author about itself are ignored.
//
// Every node's level:
//
//   - self: self's own ID, whatever else is said of it.
//   - blocked: on the block list. Wins over everything but self.
//   - verified, trusted, marginal, distrusted: self's own standing record on
//     the node (hop 1).
//   - web: no standing record of self's on it, but vouched for by ≥ 1 full
//     or ≥ 3 marginal introductions (below).
//   - unknown: anything else, and every ID never seen.
//
// An introduction is an introducer's standing record on a subject with level
// verified, trusted or marginal; others' distrusted records count neither
// for nor against. Its weight is min(power of the introducer, strength of
// the record): the strength of verified and trusted is full, of marginal
// marginal. Power: self's verified and trusted nodes have full power, its
// marginal ones marginal power; a web node has one step less than the
// strongest introduction it received (full→marginal, marginal→none);
// distrusted, blocked, unknown nodes and self have none (self's own records
// are levels, not introductions).
//
// Depth: self's nodes are at hop 1. The levels are found layer by layer:
// a node is web at hop h+1 if the introducers at hops ≤ h vouch for it and
// those at hops < h did not. So a web node's hop is 1 + the hop of the
// farthest introducer it needs, taking the nearest ones first (the brief's
// "1 + the smallest hop of the introducers that make it web", made precise
// for a node that needs introducers from several hops). A node is web only
// at hop ≤ depth, and a node at hop == depth introduces nobody.
// Verdict.Introducers lists every introducer of a web node that is closer
// to self than it, so "why" always leads back to self's records.
//
// What follows: full introductions come only from self's verified and
// trusted nodes, so only web nodes at hop 2 can have power (marginal), and
// no node is web beyond hop 3 whatever the depth limit: a depth of 1 means
// no web, 2 a web of self's nodes' introductions alone, 3 or more the whole
// rule.
//
// # Keeping it up to date
//
// Add, Block and Load keep every level current. Every node keeps the
// introductions it receives, so judging it costs its introducers, not every
// record on it. Add recomputes only what the change can reach: a record by a
// node that introduces nobody (no power, or at the depth limit) changes no
// level and costs one binary search; a record by an introducer re-evaluates
// its subject, and, if the subject's power or hop moves, the subject's
// subjects; a record of self's or a block re-evaluates the node and what it
// introduces, layer by layer. Load and Recompute make one full pass. The
// result depends only on the standing records and the block list, never on
// the order they came in.
package trust
