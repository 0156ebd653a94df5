// Package output prints log entries the way the announcer and subscriber
// commands show them: one JSON Entry per line, or one human line each.
package output

import (
	"fmt"
	"io"
	"strings"

	"github.com/go-json-experiment/json"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// Formats of entry output.
const (
	JSON = "json" // one Entry per line (see view.Entry)
	Text = "text" // one human line per entry
)

// CheckFormat reports whether f is a known format.
func CheckFormat(f string) error {
	if f != JSON && f != Text {
		return fmt.Errorf("--format %q: want json or text", f)
	}
	return nil
}

// Entry writes e in format f, followed by a newline.
func Entry(w io.Writer, f string, e *view.Entry) error {
	if f == JSON {
		b, err := view.MarshalEntry(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintf(w, "%d\t%s\t%s #%d\t%s\n", e.Cursor, e.Kind, e.Tracker, e.Seq, Describe(e))
	return err
}

// Describe says in a few words what an entry announces.
func Describe(e *view.Entry) string {
	p, err := topics.ParsePayload(e.Announcement)
	if err != nil || p.Opaque() {
		return fmt.Sprintf("(%s, payload v%d)", e.ID, payloadVersion(e))
	}
	by := author(e)
	switch p.Kind {
	case topics.KindThing:
		return fmt.Sprintf("%q version %s (thing %s) by %s", OneLine(p.Thing.Title), OneLine(p.Thing.Version), quoteID(p.Thing.ID), by)
	case topics.KindTracker:
		return fmt.Sprintf("tracker %q by %s", OneLine(p.TrackerInfo.Name), by)
	case topics.KindNode:
		return fmt.Sprintf("node record of %s: %d trackers", by, len(p.NodeInfo.Trackers))
	case topics.KindRetract:
		return fmt.Sprintf("retracts %s", p.Retracts)
	case topics.KindTrust:
		return fmt.Sprintf("%s says %s of %s", by, p.Trust.Level, short(p.Trust.Subject))
	case topics.KindFlag:
		if p.Flag.Withdraw {
			return fmt.Sprintf("%s withdraws its flag on %s", by, OneLine(p.Flag.Target.Key()))
		}
		return fmt.Sprintf("%s flags %s: %s", by, OneLine(p.Flag.Target.Key()), p.Flag.Reason)
	}
	return ""
}

// author names an entry's author, with its trust level where the node
// gave one.
func author(e *view.Entry) string {
	if e.Trust == "" {
		return short(e.Author)
	}
	return short(e.Author) + " (" + e.Trust + ")"
}

func payloadVersion(e *view.Entry) int {
	var v struct {
		V int `json:"v"`
	}
	json.Unmarshal(e.Announcement, &v)
	return v.V
}

// short abbreviates a node ID for human output.
func short(id string) string {
	if len(id) > 16 {
		return id[:8] + "…" + id[len(id)-6:]
	}
	return id
}

func quoteID(s string) string { return fmt.Sprintf("%q", OneLine(s)) }

// OneLine keeps untrusted text from breaking a line of output.
func OneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
