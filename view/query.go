package view

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/thingtracker/ttn/topics"
)

// ErrNotFound is what the node's query APIs return, wrapped, for an ID that
// names nothing stored.
var ErrNotFound = errors.New("view: not found")

// Bounds of a Things query: a page holds at most MaxThingsLimit Things.
const (
	DefaultThingsLimit = 50
	MaxThingsLimit     = 500
	maxQueryText       = 200
)

// ThingsQuery selects Things from a node's latest state: the HTTP API's
// /v1/things and the NATS API's ttn.api.things both speak it. Empty fields
// select everything.
type ThingsQuery struct {
	Tracker topics.TrackerID `json:"tracker,omitzero"`
	Author  string           `json:"author,omitempty"` // node ID: the Things of that node's trackers
	Tag     string           `json:"tag,omitempty"`    // one of the Thing's tags, ignoring case
	Text    string           `json:"text,omitempty"`   // in the id, title or description, ignoring case
	// Flagged includes flagged Things, which are left out by default.
	Flagged bool `json:"flagged,omitempty"`
	// After continues a previous page: its Next.
	After string `json:"after,omitempty"`
	// Limit is the most Things a page holds: DefaultThingsLimit when 0, at
	// most MaxThingsLimit.
	Limit int `json:"limit,omitempty"`

	lowerText string // Text in lower case, once per query
}

// Check validates the query and fills in the default limit.
func (q *ThingsQuery) Check() error {
	if q.Author != "" {
		if _, err := topics.NodeKey(q.Author); err != nil {
			return fmt.Errorf("author: %w", err)
		}
	}
	if len(q.Tag) > maxQueryText || len(q.Text) > maxQueryText || !utf8.ValidString(q.Tag) || !utf8.ValidString(q.Text) {
		return fmt.Errorf("tag and text: at most %d bytes of UTF-8", maxQueryText)
	}
	if _, _, _, err := q.AfterThing(); err != nil {
		return err
	}
	switch {
	case q.Limit < 0 || q.Limit > MaxThingsLimit:
		return fmt.Errorf("limit %d: want 1 to %d", q.Limit, MaxThingsLimit)
	case q.Limit == 0:
		q.Limit = DefaultThingsLimit
	}
	q.lowerText = strings.ToLower(q.Text)
	return nil
}

// Match reports whether a Thing passes the query's tag and text filters.
// Call it on a checked query.
func (q *ThingsQuery) Match(t *topics.Thing) bool {
	if q.Tag != "" && !slices.ContainsFunc(t.Tags, func(tag string) bool { return strings.EqualFold(tag, q.Tag) }) {
		return false
	}
	if q.Text == "" {
		return true
	}
	for _, s := range []string{t.ID, t.Title, t.Description} {
		if strings.Contains(strings.ToLower(s), q.lowerText) {
			return true
		}
	}
	return false
}

// PageToken names the Thing a page of Things ended with, so the next page
// starts after it. It is opaque to clients.
func PageToken(tracker topics.TrackerID, thing string) string {
	return base64.RawURLEncoding.EncodeToString(append(tracker[:], thing...))
}

// AfterThing decodes q.After: the Thing the next page starts after; ok is
// false when q.After is empty.
func (q *ThingsQuery) AfterThing() (tracker topics.TrackerID, thing string, ok bool, err error) {
	if q.After == "" {
		return tracker, "", false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(q.After)
	if err != nil || len(b) < len(tracker) || len(b) > len(tracker)+topics.MaxIDLen {
		return tracker, "", false, errors.New("after: not a page token from a previous page")
	}
	return topics.TrackerID(b[:len(tracker)]), string(b[len(tracker):]), true, nil
}

// ThingSummary is one Thing of a query's page: its latest version (the
// newest that is not retracted) and that version's latest edit.
type ThingSummary struct {
	Tracker      topics.TrackerID `json:"tracker"`
	ID           string           `json:"id"`
	Author       string           `json:"author"`
	Version      string           `json:"version"`
	Versions     int              `json:"versions"`     // how many versions are shown (not retracted)
	Announcement topics.ID        `json:"announcement"` // of the latest edit
	Cursor       uint64           `json:"cursor"`
	Thing        *topics.Thing    `json:"thing"`
	Trust        string           `json:"trust"` // the author's trust level here
	Flags        Flags            `json:"flags"`
}

// ThingsPage is a page of a Things query. Next, when set, continues it: a
// page may be short, even empty, and still have a Next, because a query
// scans a bounded number of Things per page.
type ThingsPage struct {
	Things []ThingSummary `json:"things"`
	Next   string         `json:"next,omitempty"`
}
