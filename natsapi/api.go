package natsapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/nats-io/nats.go/micro"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
	"github.com/thingtracker/ttn/view"
)

// Bounds of the request API.
const (
	requestTimeout      = 30 * time.Second
	defaultHistoryLimit = 100
	maxHistoryLimit     = 1000
	// replyHeadroom keeps a history page under the connection's maximum
	// payload, with room for the page's own fields.
	replyHeadroom = 4 << 10
	maxReply      = 1 << 20
)

// The API runs as a NATS micro service, "ttn": besides ttn.api.*, it answers
// the standard discovery requests ($SRV.PING, $SRV.INFO, $SRV.STATS), so
// `nats micro ls` lists it. Each endpoint serves one request at a time.
func (s *Server) serveAPI() error {
	svc, err := micro.AddService(s.nc, micro.Config{
		Name:        "ttn",
		Version:     "1.0.0",
		Description: "Thing Tracker Network node: publish Things, read the log and the latest state",
	})
	if err != nil {
		return fmt.Errorf("natsapi: %w", err)
	}
	s.svc = svc
	endpoints := []struct {
		name string
		fn   func(context.Context, []byte) (any, error)
	}{
		{"publish", s.publish},
		{"history", s.history},
		{"thing", s.thing},
		{"things", s.things},
		{"search", s.search},
		{"status", s.status},
		{"node", s.node},
		{"discovered", s.discovered},
	}
	for _, e := range endpoints {
		h := micro.HandlerFunc(func(req micro.Request) { s.handle(req, e.fn) })
		if err := svc.AddEndpoint(e.name, h, micro.WithEndpointSubject(APIPrefix+e.name)); err != nil {
			svc.Stop()
			return fmt.Errorf("natsapi: %w", err)
		}
	}
	return nil
}

// apiError is a refusal with a code (as HTTP's) and a reason.
type apiError struct {
	code   int
	reason string
}

func (e *apiError) Error() string { return e.reason }

func badRequest(format string, args ...any) error {
	return &apiError{400, fmt.Sprintf(format, args...)}
}

// ErrorReply is the body of an error reply; the headers Nats-Service-Error
// and Nats-Service-Error-Code carry the same reason and its code.
type ErrorReply struct {
	Error string `json:"error"`
}

// handle answers one request: the result as JSON, or an error reply.
func (s *Server) handle(req micro.Request, fn func(context.Context, []byte) (any, error)) {
	ctx, cancel := context.WithTimeout(s.ctx, requestTimeout) // Close cancels it
	defer cancel()
	result, err := fn(ctx, req.Data())
	var b []byte
	if err == nil {
		if b, err = json.Marshal(result); err == nil {
			if err = req.Respond(b); err == nil {
				return
			}
			// Over the requester's max payload, say: tell it why.
		}
	}
	code := 500
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		code = ae.code
	case errors.Is(err, view.ErrNotFound):
		code = 404
	}
	reason := oneLine(err.Error())
	b, _ = json.Marshal(ErrorReply{reason})
	req.Error(fmt.Sprint(code), reason, b)
}

// oneLine keeps an error reason on one line, as headers need.
func oneLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}

// decode reads a request's JSON (an empty request is {}), refusing unknown
// members so that a misspelt field is an error, not a silent default.
func decode(data []byte, v any) error {
	if len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, v, json.RejectUnknownMembers(true)); err != nil {
		return badRequest("bad request: %v", err)
	}
	return nil
}

// PublishRequest is the body of ttn.api.publish: Things (TTN objects, read
// as `announcer publish` reads them) for one of the node's trackers.
type PublishRequest struct {
	Tracker topics.TrackerID `json:"tracker"`
	Thing   jsontext.Value   `json:"thing,omitempty"`
	Things  []jsontext.Value `json:"things,omitempty"`
}

func (s *Server) publish(ctx context.Context, data []byte) (any, error) {
	if !s.authed {
		return nil, &apiError{403, "publishing through the node needs NATS authentication: configure a token or users (see README)"}
	}
	var req PublishRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	raw := req.Things
	if req.Thing != nil {
		raw = append(raw, req.Thing)
	}
	switch {
	case req.Tracker.IsZero():
		return nil, badRequest("publish needs a tracker")
	case req.Thing != nil && len(req.Things) > 0:
		return nil, badRequest("publish takes a thing or things, not both")
	case len(raw) == 0:
		return nil, badRequest("publish needs a thing or things")
	case len(raw) > s.cfg.PublishBurst:
		return nil, badRequest("at most %d Things per request", s.cfg.PublishBurst)
	}
	things := make([]topics.Thing, len(raw))
	for i, r := range raw {
		t, err := ttn.ParseThing(r)
		if err != nil {
			return nil, badRequest("thing %d: %v", i+1, err)
		}
		things[i] = *t
	}
	// Requests are served one at a time: what is checked here is still
	// there to take after the publish, and a refused publish costs nothing.
	if short := float64(len(things)) - s.limiter.Tokens(); short > 0 {
		s.limited.Add(1)
		retry := time.Duration(short / s.cfg.PublishRate * float64(time.Second))
		return nil, &apiError{429, fmt.Sprintf("rate limited: at most %g Things per second; retry in %s", s.cfg.PublishRate, retry.Round(time.Millisecond))}
	}
	result, err := s.b.Publish(ctx, req.Tracker, things)
	if err != nil {
		if ctx.Err() == nil {
			err = &apiError{400, err.Error()}
		}
		return nil, err
	}
	s.limiter.AllowN(time.Now(), len(things))
	return result, nil
}

// HistoryRequest is the body of ttn.api.history.
type HistoryRequest struct {
	// After is the cursor the page starts after (0: from the start).
	After uint64 `json:"after"`
	// Limit is the most entries a page holds: 100 when 0, at most 1000.
	// A page also stays under the connection's maximum payload.
	Limit int `json:"limit"`
}

// HistoryPage is the reply of ttn.api.history: entries in log order. Next
// is the cursor to ask after for the next page; the log ends at Last.
type HistoryPage struct {
	Entries []jsontext.Value `json:"entries"` // view.Entry each
	Next    uint64           `json:"next"`
	Last    uint64           `json:"last"`
}

func (s *Server) history(_ context.Context, data []byte) (any, error) {
	var req HistoryRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	switch {
	case req.Limit < 0 || req.Limit > maxHistoryLimit:
		return nil, badRequest("limit %d: want 1 to %d", req.Limit, maxHistoryLimit)
	case req.Limit == 0:
		req.Limit = defaultHistoryLimit
	}
	es, err := s.b.Entries(req.After, req.Limit)
	if err != nil {
		return nil, err
	}
	page := HistoryPage{Entries: []jsontext.Value{}, Next: req.After, Last: s.b.Last()} // after: Next ≤ Last
	budget := min(int(s.nc.MaxPayload()), maxReply) - replyHeadroom
	for i := range es {
		b, err := view.MarshalEntry(&es[i])
		if err != nil {
			return nil, err
		}
		if budget -= len(b) + 1; budget < 0 && len(page.Entries) > 0 {
			break
		}
		page.Entries = append(page.Entries, b)
		page.Next = es[i].Cursor
	}
	return page, nil
}

// ThingRequest is the body of ttn.api.thing.
type ThingRequest struct {
	Tracker topics.TrackerID `json:"tracker"`
	ID      string           `json:"id"`
}

func (s *Server) thing(ctx context.Context, data []byte) (any, error) {
	var req ThingRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if req.Tracker.IsZero() || req.ID == "" {
		return nil, badRequest("thing needs a tracker and an id")
	}
	return s.b.Thing(ctx, req.Tracker, req.ID)
}

func (s *Server) things(ctx context.Context, data []byte) (any, error) {
	var q view.ThingsQuery
	if err := decode(data, &q); err != nil {
		return nil, err
	}
	if err := q.Check(); err != nil {
		return nil, badRequest("%v", err)
	}
	return s.b.Things(ctx, q)
}

func (s *Server) search(ctx context.Context, data []byte) (any, error) {
	var q view.SearchQuery
	if err := decode(data, &q); err != nil {
		return nil, err
	}
	if err := q.Check(); err != nil {
		return nil, badRequest("%v", err)
	}
	return s.b.Search(ctx, q)
}

func (s *Server) status(ctx context.Context, data []byte) (any, error) {
	if err := decode(data, &struct{}{}); err != nil {
		return nil, err
	}
	return s.b.Status(ctx)
}

// NodeRequest asks ttn.api.node about a node.
type NodeRequest struct {
	ID string `json:"id"` // a node ID
}

func (s *Server) node(ctx context.Context, data []byte) (any, error) {
	var req NodeRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if _, err := topics.NodeKey(req.ID); err != nil {
		return nil, badRequest("node: %v", err)
	}
	return s.b.NodeDetail(ctx, req.ID)
}

func (s *Server) discovered(ctx context.Context, data []byte) (any, error) {
	if err := decode(data, &struct{}{}); err != nil {
		return nil, err
	}
	return s.b.Discovered(ctx)
}
