// Package feed is the node's append-only announcement log, kept in Pebble.
//
// Every accepted envelope is stored once, in arrival order, under a local
// cursor (a decimal uint64, exclusive: "entries after C"). Alongside, the log
// keeps each chain (one author's entries on one tracker, ordered by seq and
// linked by prev): its contiguous head, its missing ranges (capped), and the
// first two envelopes of a fork, after which the chain is frozen. From the
// entries it derives the latest state of every Thing (versions, edits,
// parents, retractions) and tracker, and indexes the standing trust record
// or flag of every author on every subject or target.
//
// One writer goroutine applies appends and publishes in groups that share one
// fsync: an append returns only once it is durable. Publishing goes through
// the same writer, which makes it the data dir's one seq allocator.
package feed
