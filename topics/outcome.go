package topics

import (
	"errors"
	"fmt"
)

// Outcome is what validation decides about a message, in GossipSub's terms.
type Outcome int

const (
	// Accept: valid and new; store and forward.
	Accept Outcome = iota
	// Ignore: drop without penalty (already seen, old, from the future, over
	// budget, or only invalid from this node's point of view).
	Ignore
	// Reject: invalid on every node; drop and penalise the sender.
	Reject
)

func (o Outcome) String() string {
	switch o {
	case Accept:
		return "accept"
	case Ignore:
		return "ignore"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Error is a validation failure: the outcome it maps to and a one-line reason.
type Error struct {
	Outcome Outcome
	Reason  string
}

func (e *Error) Error() string { return e.Reason }

func rejectf(format string, args ...any) error {
	return &Error{Outcome: Reject, Reason: fmt.Sprintf(format, args...)}
}

func ignoref(format string, args ...any) error {
	return &Error{Outcome: Ignore, Reason: fmt.Sprintf(format, args...)}
}

// OutcomeOf maps an error onto an outcome: nil is Accept, an *Error carries
// its own, and anything else (a local failure, such as a closed log) is Ignore,
// because it says nothing about the message.
func OutcomeOf(err error) Outcome {
	if err == nil {
		return Accept
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Outcome
	}
	return Ignore
}
