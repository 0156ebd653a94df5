package gossip

// GraylistThreshold is the score below which a node ignores a peer's RPCs,
// for the external tests that check an attacker lands there.
const GraylistThreshold = graylistThreshold
