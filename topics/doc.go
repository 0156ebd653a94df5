// Package topics defines what travels on the Thing Tracker Network and how it
// is judged, with no I/O: topic names, tracker and announcement IDs, the
// signed envelope, the strict payload, and stateless validation.
//
// An announcement is a libp2p signed envelope (domain "thing-tracker-network",
// payload type "/ttn/announcement/1") whose payload is strict JSON (see
// Payload). Its ID is the SHA-256 of the envelope bytes. Validate applies every
// check that needs no state; the checks that need the log (already stored,
// chain order, forks, budgets) belong to the caller. Errors are *Error values
// that map onto GossipSub's Accept, Ignore and Reject.
package topics
