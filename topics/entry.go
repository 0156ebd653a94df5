package topics

import (
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Entry is the one shape in which a node shows a stored announcement: log and
// subscriber JSON lines, SSE data, NATS history pages. Cursor is the position
// in the local log (meaningful on that node only); Announcement is the payload
// JSON exactly as signed and Envelope the envelope bytes (base64 in JSON), so
// any consumer can verify for itself.
type Entry struct {
	Cursor       uint64         `json:"cursor"`
	ID           ID             `json:"id"`
	Topic        string         `json:"topic"`
	Kind         string         `json:"kind"`
	Author       string         `json:"author"`
	Tracker      TrackerID      `json:"tracker"`
	Seq          uint64         `json:"seq"`
	Announcement jsontext.Value `json:"announcement"`
	Envelope     []byte         `json:"envelope"`
}

// NewEntry returns the Entry of an announcement stored at cursor.
func NewEntry(cursor uint64, a *Announcement) Entry {
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
