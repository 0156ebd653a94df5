package control

import (
	"errors"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/view"
)

// Error is an operation's failure as the control channel carries it: a
// code naming the sentinel it wraps (empty when none), and the message.
// Unwrap gives the sentinel back, so errors.Is(err, feed.ErrDiskFull)
// holds for an error from a running node as for one from the dir.
type Error struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel the code names, or nil.
func (e *Error) Unwrap() error {
	for _, c := range codes {
		if c.code == e.Code {
			return c.err
		}
	}
	return nil
}

// codes are the sentinels that keep their identity across the channel. A
// code is part of the protocol: never reuse one for another meaning.
var codes = []struct {
	code string
	err  error
}{
	{"no_identity", datadir.ErrNoIdentity},
	{"dir_in_use", datadir.ErrDirInUse},
	{"nothing_to_publish", datadir.ErrNothingToPublish},
	{"disk_full", feed.ErrDiskFull},
	{"frozen", feed.ErrFrozen},
	{"no_target", feed.ErrNoTarget},
	{"not_owner", feed.ErrNotOwner},
	{"log_closed", feed.ErrClosed},
	{"not_found", view.ErrNotFound},
	{"bad_request", ErrBadRequest},
	{"node_gone", ErrNodeGone},
	{"fingerprint_mismatch", datadir.ErrFingerprintMismatch},
	{"committed", datadir.ErrCommitted},
	{"no_commitment", datadir.ErrNoCommitment},
	{"wrong_phrase", datadir.ErrWrongPhrase},
	{"spent_phrase", datadir.ErrSpentPhrase},
	{"retired", datadir.ErrRetired},
	{"unknown_parent", datadir.ErrUnknownParent},
}

// Errors of the channel itself.
var (
	// ErrNoNode means no node serves the data dir.
	ErrNoNode = errors.New("control: no node is running on the data dir")
	// ErrBadRequest is a request the node could not read or that names no
	// operation it knows.
	ErrBadRequest = errors.New("control: bad request")
	// ErrRefused is a caller of another user.
	ErrRefused = errors.New("control: refused: another user")
	// ErrStreamEnded means the node ended a subscription: it stopped.
	ErrStreamEnded = errors.New("control: the node ended the stream")
	// ErrNodeGone means the node went away mid-request: the operation may
	// or may not have happened. Repeating it is safe: publishing the same
	// Things again returns their existing IDs.
	ErrNodeGone = errors.New("control: the node went away before answering; the operation may have happened, and repeating it is safe")
)

// wireError is how the node sends err: with the code of the first sentinel
// it wraps.
func wireError(err error) *Error {
	e := &Error{Message: err.Error()}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			e.Code = c.code
			break
		}
	}
	return e
}
