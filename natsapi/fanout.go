package natsapi

import (
	"context"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/thingtracker/ttn/topics"
)

// fanBatch is how many entries the fan-out reads from the log at once.
const fanBatch = 256

// Subject returns the subject an announcement goes out on:
// ttn.ann.<tracker id>.<kind>. A kind that is not a plain NATS token (only
// a future payload version could carry one) goes out as "unknown".
func Subject(tracker topics.TrackerID, kind string) string {
	for i := 0; i < len(kind); i++ {
		if c := kind[i]; c <= ' ' || c == 0x7f || c == '.' || c == '*' || c == '>' {
			kind = "unknown"
			break
		}
	}
	if kind == "" {
		kind = "unknown"
	}
	return AnnouncePrefix + tracker.String() + "." + kind
}

// fanOut publishes every entry appended to the log, live or synced, in log
// order. It reads the log on its own cursor, so however slowly plugins
// read, ingest never waits for it: the server cuts a plugin that falls too
// far behind (a slow consumer), and the plugin reads what it missed through
// ttn.api.history.
func (s *Server) fanOut(ctx context.Context) {
	defer s.wg.Done()
	cursor := s.cursor.Load()
	for {
		if err := s.b.Wait(ctx, cursor); err != nil {
			return
		}
		es, err := s.b.Entries(cursor, fanBatch)
		if err != nil {
			s.cfg.Logger.Error("fan-out: reading the log", "cursor", cursor, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
				continue
			}
		}
		for i := range es {
			if err := s.nc.PublishMsg(announcement(&es[i])); err != nil {
				s.fanErrors.Add(1)
				s.cfg.Logger.Warn("fan-out: publish failed", "cursor", es[i].Cursor, "err", err)
			} else {
				s.fanned.Add(1)
			}
			cursor = es[i].Cursor
			s.cursor.Store(cursor)
		}
	}
}

// announcement builds the message of an entry: the payload as signed, with
// the headers a plugin needs to place and verify it.
func announcement(e *topics.Entry) *nats.Msg {
	return &nats.Msg{
		Subject: Subject(e.Tracker, e.Kind),
		Data:    e.Announcement,
		Header: nats.Header{
			HeaderID:       {e.ID.String()},
			HeaderAuthor:   {e.Author},
			HeaderSeq:      {strconv.FormatUint(e.Seq, 10)},
			HeaderCursor:   {strconv.FormatUint(e.Cursor, 10)},
			HeaderEnvelope: {base64.StdEncoding.EncodeToString(e.Envelope)},
		},
	}
}
