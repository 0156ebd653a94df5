// Package view holds the shapes in which a node shows what it holds to the
// programs and people that ask: the Entry of every log line, SSE event and
// NATS history page; Things queries and their pages; a Thing's history; a
// page of trackers; the node's status. The front ends (httpapi, natsapi,
// control) speak these; node fills them. It is pure: it imports topics,
// nothing that does I/O.
package view

import (
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/thingtracker/ttn/topics"
)

// Entry is the one shape in which a node shows a stored announcement: log and
// subscriber JSON lines, SSE data, NATS history pages. Cursor is the position
// in the local log (meaningful on that node only); Announcement is the payload
// JSON exactly as signed and Envelope the envelope bytes (base64 in JSON), so
// any consumer can verify for itself.
type Entry struct {
	Cursor       uint64           `json:"cursor"`
	ID           topics.ID        `json:"id"`
	Topic        string           `json:"topic"`
	Kind         string           `json:"kind"`
	Author       string           `json:"author"`
	Tracker      topics.TrackerID `json:"tracker"`
	Seq          uint64           `json:"seq"`
	Announcement jsontext.Value   `json:"announcement"`
	Envelope     []byte           `json:"envelope"`
	// Trust is the author's trust level on the node that shows the entry
	// (self, verified, trusted, marginal, web, unknown, ...); empty where
	// no node computed it (a log read offline).
	Trust string `json:"trust,omitempty"`
	// Void marks an entry its author's key rotation voided: signed by the
	// old key past the heads the author vouched for. It is kept as
	// evidence and left out of every view.
	Void bool `json:"void,omitempty"`
}

// NewEntry returns the Entry of an announcement stored at cursor.
func NewEntry(cursor uint64, a *topics.Announcement) Entry {
	return Entry{
		Cursor:       cursor,
		ID:           a.ID,
		Topic:        a.Topic(),
		Kind:         a.Payload.Kind,
		Author:       a.Payload.Author,
		Tracker:      a.Payload.Tracker,
		Seq:          a.Payload.Seq,
		Announcement: jsontext.Value(a.Env.Payload),
		Envelope:     a.Env.Raw,
	}
}

// MarshalEntry encodes e as one line of JSON (no trailing newline).
func MarshalEntry(e *Entry) ([]byte, error) { return json.Marshal(e) }
