package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// feedBatch is how many entries a feed reads from the log at once.
const feedBatch = 256

// feed streams log entries as Server-Sent Events: each Entry as data, its
// cursor as the event ID. It starts after the client's Last-Event-ID (a
// reconnection), else after ?since=C, else at the end of the log (live
// only); ?tracker=ID (repeatable) keeps only those trackers' entries. A
// comment goes out after KeepAlive of silence, so proxies keep the
// connection; a client that does not read for WriteTimeout is dropped, and
// at most MaxFeeds are served at once. Each client costs one batch of
// entries at most.
func (s *Server) feed(w http.ResponseWriter, r *http.Request) error {
	select {
	case s.feeds <- struct{}{}:
		defer func() { <-s.feeds }()
	default:
		return &apiError{http.StatusServiceUnavailable, "too many feed clients; try again later"}
	}
	sess, err := sse.Upgrade(w, r)
	if err != nil {
		return &apiError{http.StatusInternalServerError, err.Error()}
	}
	cursor := s.b.Last()
	if v, err := one(r, "since"); err != nil {
		return err
	} else if v != "" {
		if cursor, err = strconv.ParseUint(v, 10, 64); err != nil {
			return badRequest("since %q: want a cursor (a whole number)", v)
		}
	}
	if id := sess.LastEventID.String(); id != "" {
		if cursor, err = strconv.ParseUint(id, 10, 64); err != nil {
			return badRequest("Last-Event-ID %q: want a cursor", id)
		}
	}
	only := map[topics.TrackerID]bool{}
	for _, v := range r.URL.Query()["tracker"] {
		t, err := trackerParam(v)
		if err != nil {
			return err
		}
		only[t] = true
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.done: // the server closes
			cancel()
		case <-ctx.Done():
		}
	}()
	rc := http.NewResponseController(w)
	deadline := func() { rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)) }
	// The headers go out at once, so the client knows it is connected.
	deadline()
	if err := sess.Flush(); err != nil {
		return nil
	}
	for {
		wait, stop := context.WithTimeout(ctx, s.cfg.KeepAlive)
		err := s.b.Wait(wait, cursor)
		stop()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, context.DeadlineExceeded) {
			m := &sse.Message{}
			m.AppendComment("keep-alive")
			deadline()
			if sess.Send(m) != nil || sess.Flush() != nil {
				return nil
			}
			continue
		}
		if err != nil {
			return nil // the log closed
		}
		es, err := s.b.Entries(cursor, feedBatch)
		if err != nil {
			s.cfg.Logger.Warn("feed: reading the log", "cursor", cursor, "err", err)
			return nil
		}
		deadline() // for the batch: a client that reads keeps up
		for i := range es {
			cursor = es[i].Cursor
			if es[i].Void || len(only) > 0 && !only[es[i].Tracker] {
				continue // void: its author's key rotation voided it
			}
			b, err := view.MarshalEntry(&es[i])
			if err != nil {
				return nil
			}
			m := &sse.Message{ID: sse.ID(strconv.FormatUint(cursor, 10))}
			m.AppendData(string(b))
			if sess.Send(m) != nil {
				return nil // the client went away, or stopped reading
			}
		}
		if sess.Flush() != nil {
			return nil
		}
	}
}
