package trust

import "fmt"

// Level is what one node is to self: a computed level in a Verdict, or the
// level a trust record states (Verified, Trusted, Marginal, Distrusted or
// None).
type Level string

// Levels. The strings are the ones records, commands and APIs carry.
const (
	Self       Level = "self"       // the node computing the levels
	Verified   Level = "verified"   // self verified its fingerprint out of band
	Trusted    Level = "trusted"    // self trusts it to introduce others
	Marginal   Level = "marginal"   // self trusts it a little
	Web        Level = "web"        // no record of self's, but vouched for by introducers
	Unknown    Level = "unknown"    // none of the above
	Distrusted Level = "distrusted" // self distrusts it
	Blocked    Level = "blocked"    // on self's local block list
	// None is a record level only: the author withdraws its earlier record.
	None Level = "none"
)

// Levels lists the computed levels in the order status output shows them.
var Levels = []Level{Self, Verified, Trusted, Marginal, Web, Unknown, Distrusted, Blocked}

// ParseLevel returns the record level s names: verified, trusted, marginal,
// distrusted or none.
func ParseLevel(s string) (Level, error) {
	l := Level(s)
	if l.IsRecordLevel() {
		return l, nil
	}
	return "", fmt.Errorf("trust: %q is not a record level (verified, trusted, marginal, distrusted, none)", s)
}

// IsRecordLevel reports whether a trust record may state l.
func (l Level) IsRecordLevel() bool {
	switch l {
	case Verified, Trusted, Marginal, Distrusted, None:
		return true
	}
	return false
}

// Weight is the strength of an introduction, and a node's power to
// introduce: none, marginal or full.
type Weight uint8

// Weights, weakest first.
const (
	WeightNone Weight = iota
	WeightMarginal
	WeightFull
)

func (w Weight) String() string {
	switch w {
	case WeightNone:
		return "none"
	case WeightMarginal:
		return "marginal"
	case WeightFull:
		return "full"
	}
	return fmt.Sprintf("weight(%d)", uint8(w))
}

// weaker is one step weaker: full→marginal, marginal→none.
func (w Weight) weaker() Weight {
	if w == WeightNone {
		return WeightNone
	}
	return w - 1
}

// Record is one trust record: Author's statement about Subject. Seq orders
// one author's records (its chain sequence, or a timestamp: the caller's
// choice, the same for every record of one graph).
type Record struct {
	Author, Subject string // node IDs
	Level           Level  // Verified, Trusted, Marginal, Distrusted or None
	Seq             uint64
}

// Verdict is what a node is to self, and why.
type Verdict struct {
	Level Level
	// Hops is 0 for Self, 1 for the nodes self has a record on, the hop at
	// which a Web node became web (2 … depth), and 0 for Unknown and Blocked.
	Hops int
	// Power is how strongly the node introduces others: full for Verified
	// and Trusted, marginal for Marginal and for Web nodes that had a full
	// introduction, none otherwise. A node at Hops == depth introduces
	// nobody, whatever its power.
	Power Weight
	// Introducers, for Web only, are the nodes whose introductions count,
	// sorted: every introducer closer to self (fewer hops) with a positive
	// record on the node. Each is itself self's own subject or Web, so
	// following them always ends at self's records.
	Introducers []string
}

// level codes: the compact form kept per node and per edge.
type code uint8

const (
	cUnknown code = iota
	cSelf
	cVerified
	cTrusted
	cMarginal
	cDistrusted
	cWeb
	cBlocked
	cNone
)

var levelOf = [...]Level{
	cUnknown: Unknown, cSelf: Self, cVerified: Verified, cTrusted: Trusted,
	cMarginal: Marginal, cDistrusted: Distrusted, cWeb: Web, cBlocked: Blocked, cNone: None,
}

// recordCode is the code of a record level; ok is false for any other.
func recordCode(l Level) (c code, ok bool) {
	switch l {
	case Verified:
		return cVerified, true
	case Trusted:
		return cTrusted, true
	case Marginal:
		return cMarginal, true
	case Distrusted:
		return cDistrusted, true
	case None:
		return cNone, true
	}
	return 0, false
}

// strength is a record's weight as an introduction: full for verified and
// trusted, marginal for marginal, none for distrusted and none (others'
// distrust counts neither for nor against).
func strength(c code) Weight {
	switch c {
	case cVerified, cTrusted:
		return WeightFull
	case cMarginal:
		return WeightMarginal
	}
	return WeightNone
}

// caution ranks record levels for two records of one pair with the same
// Seq (a forked chain): the more cautious one stands, whatever the order
// they arrive in.
func caution(c code) int {
	switch c {
	case cDistrusted:
		return 4
	case cNone:
		return 3
	case cMarginal:
		return 2
	case cTrusted:
		return 1
	}
	return 0 // verified
}
