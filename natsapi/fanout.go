package natsapi

import (
	"context"
	"errors"
	"time"

	"github.com/thingtracker/ttn/topics"
)

// fanBatch is how many entries the fan-out reads from the log at once.
const fanBatch = 256

// Subject returns the subject an announcement goes out on:
// ttn.ann.<tracker id>.<kind>. A kind that is not a plain NATS token (only
// a future payload version could carry one) goes out as "unknown".
func Subject(tracker topics.TrackerID, kind string) string {
	return string(appendSubject(nil, tracker, kind))
}

func appendSubject(b []byte, tracker topics.TrackerID, kind string) []byte {
	for i := 0; i < len(kind); i++ {
		if c := kind[i]; c <= ' ' || c == 0x7f || c == '.' || c == '*' || c == '>' {
			kind = "unknown"
			break
		}
	}
	if kind == "" {
		kind = "unknown"
	}
	b = append(b, AnnouncePrefix...)
	b, _ = tracker.AppendText(b)
	b = append(b, '.')
	return append(b, kind...)
}

// fanOut publishes every entry appended to the log, live or synced, in log
// order. It reads the log on its own cursor, so however slowly plugins
// read, ingest never waits for it: the server cuts a plugin that falls too
// far behind (a slow consumer), and the plugin reads what it missed through
// ttn.api.history.
func (s *Server) fanOut(ctx context.Context, p *publisher) {
	defer s.wg.Done()
	defer close(s.fanDone)
	defer func() {
		if p != nil {
			p.close()
		}
	}()
	cursor := s.cursor.Load()
	for {
		if err := s.b.Wait(ctx, cursor); err != nil {
			return
		}
		if p == nil {
			var err error
			if p, err = dialPublisher(s.ns, s.creds); err != nil {
				s.cfg.Logger.Error("fan-out: no connection to the server", "err", err)
				if !sleep(ctx, time.Second) {
					return
				}
				continue
			}
		}
		es, err := s.b.Entries(cursor, fanBatch)
		if err != nil || len(es) == 0 {
			s.cfg.Logger.Error("fan-out: reading the log", "cursor", cursor, "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		// A batch counts once flushed; if the connection breaks, the whole
		// batch goes again on a new one.
		sent := 0
		for i := 0; i < len(es) && err == nil; i++ {
			if es[i].Void {
				continue // voided by its author's key rotation: kept as evidence, never sent
			}
			switch err = p.publish(&es[i]); {
			case err == nil:
				sent++
			case errors.Is(err, errTooLarge):
				s.fanErrors.Add(1)
				s.cfg.Logger.Warn("fan-out: announcement not published", "cursor", es[i].Cursor, "err", err)
				err = nil
			}
		}
		if err == nil {
			err = p.flush()
		}
		if err != nil {
			s.fanErrors.Add(1)
			s.cfg.Logger.Warn("fan-out: connection to the server lost", "cursor", cursor, "err", err)
			p.close()
			p = nil
			continue
		}
		cursor = es[len(es)-1].Cursor
		s.fanned.Add(uint64(sent))
		s.cursor.Store(cursor)
		select {
		case s.fanMoved <- struct{}{}:
		default: // Leave has not read the last one yet
		}
	}
}

// sleep waits d, or less if ctx ends first; it reports whether ctx is
// still live.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
