package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
	"github.com/thingtracker/ttn/view"
)

// dialTimeout bounds how long a client waits to connect.
const dialTimeout = 5 * time.Second

// Client talks to the node serving a data dir. Each call is one
// connection; a Client may be used concurrently.
type Client struct{ path string }

// Dial returns a client of the node serving dir, or ErrNoNode.
func Dial(ctx context.Context, dir string) (*Client, error) {
	c := &Client{path: Path(dir)}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	conn.Close()
	return c, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := dial(ctx, c.path)
	if err != nil && !errors.Is(err, ErrNoNode) {
		return nil, fmt.Errorf("control: %w", err)
	}
	return conn, err
}

// call sends one request and decodes its result into out (when not nil).
// A connection that ends before the answer is ErrNodeGone: the request may
// have been carried out.
func (c *Client) call(ctx context.Context, req *request, out any) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if len(b) > MaxRequest {
		return fmt.Errorf("%w: larger than %d MiB", ErrBadRequest, MaxRequest>>20)
	}
	sent := false
	if _, err = conn.Write(append(b, '\n')); err == nil {
		sent = true
		var resp response
		if err = json.UnmarshalRead(bufio.NewReader(conn), &resp); err == nil {
			if resp.Error != nil {
				return resp.Error
			}
			if out == nil || len(resp.Result) == 0 {
				return nil
			}
			return json.Unmarshal(resp.Result, out)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if sent || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return ErrNodeGone
	}
	return fmt.Errorf("control: %w", err)
}

// CreateTracker asks the node to create a tracker (see datadir.Dir.CreateTracker).
func (c *Client) CreateTracker(ctx context.Context, info topics.TrackerInfo, update bool) (r datadir.TrackerResult, err error) {
	err = c.call(ctx, &request{Op: OpCreateTracker, Info: &info, Update: update}, &r)
	return r, err
}

// Publish asks the node to publish Things (see datadir.Dir.Publish), in
// requests of at most maxChunk bytes each. After an error, the Things
// published so far come back with it.
func (c *Client) Publish(ctx context.Context, tracker topics.TrackerID, things []topics.Thing, opts ...datadir.PublishOptions) ([]feed.Published, error) {
	var o datadir.PublishOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if len(things) == 0 {
		return nil, c.call(ctx, &request{Op: OpPublish, Tracker: tracker}, nil) // the node says why
	}
	var out []feed.Published
	err := chunks(things, func(t *topics.Thing) int { b, _ := json.Marshal(t); return len(b) }, func(part []topics.Thing) error {
		var ps []feed.Published
		err := c.call(ctx, &request{Op: OpPublish, Tracker: tracker, Things: part, Publish: o}, &ps)
		out = append(out, ps...)
		return err
	})
	return out, err
}

// Import asks the node to import a document (see datadir.Dir.Import).
func (c *Client) Import(ctx context.Context, doc *ttn.Document) (r datadir.ImportResult, err error) {
	err = c.call(ctx, &request{Op: OpImport, Doc: doc}, &r)
	return r, err
}

// Retract asks the node to retract (see datadir.Dir.Retract).
func (c *Client) Retract(ctx context.Context, id topics.ID) (p feed.Published, err error) {
	err = c.call(ctx, &request{Op: OpRetract, ID: id}, &p)
	return p, err
}

// Ingest asks the node to ingest envelopes (see datadir.Dir.Ingest), in
// requests of at most maxChunk bytes each.
func (c *Client) Ingest(ctx context.Context, envelopes [][]byte) (datadir.IngestResult, error) {
	var sum datadir.IngestResult
	err := chunks(envelopes, func(e *[]byte) int { return len(*e)*4/3 + 4 }, func(part [][]byte) error {
		var r datadir.IngestResult
		err := c.call(ctx, &request{Op: OpIngest, Envelopes: part}, &r)
		sum.Stored, sum.Duplicate, sum.Refused = sum.Stored+r.Stored, sum.Duplicate+r.Duplicate, sum.Refused+r.Refused
		return err
	})
	return sum, err
}

// chunks calls send with consecutive parts of items whose sizes add up to
// at most maxChunk (one item at least), stopping at the first error.
func chunks[T any](items []T, size func(*T) int, send func([]T) error) error {
	start, n := 0, 0
	for i := range items {
		s := size(&items[i])
		if i > start && n+s > maxChunk {
			if err := send(items[start:i]); err != nil {
				return err
			}
			start, n = i, 0
		}
		n += s
	}
	if start < len(items) {
		return send(items[start:])
	}
	return nil
}

// Entries returns up to limit log entries after since.
func (c *Client) Entries(ctx context.Context, since uint64, limit int) (es []view.Entry, err error) {
	err = c.call(ctx, &request{Op: OpEntries, Since: since, Limit: limit}, &es)
	return es, err
}

// Status returns the running node's status.
func (c *Client) Status(ctx context.Context) (s *view.Status, err error) {
	err = c.call(ctx, &request{Op: OpStatus}, &s)
	return s, err
}

// Follow asks the node to follow trackers and nodes.
func (c *Client) Follow(ctx context.Context, fs datadir.FollowSet) error {
	return c.call(ctx, &request{Op: OpFollow, Follows: fs}, nil)
}

// Unfollow asks the node to stop following trackers and nodes.
func (c *Client) Unfollow(ctx context.Context, fs datadir.FollowSet) error {
	return c.call(ctx, &request{Op: OpUnfollow, Follows: fs}, nil)
}

// Follows returns what the node follows, as stored.
func (c *Client) Follows(ctx context.Context) (fs datadir.FollowSet, err error) {
	err = c.call(ctx, &request{Op: OpFollows}, &fs)
	return fs, err
}

// Close does nothing: every call has its own connection.
func (c *Client) Close() error { return nil }

// Stream is a live feed of entries from a running node.
type Stream struct {
	conn net.Conn
	dec  *jsontext.Decoder
}

// Subscribe streams the node's entries after since, as they arrive: all of
// them, or, with followed, those of the trackers it follows (itself or
// through a followed node, as that changes). Close ends it.
func (c *Client) Subscribe(ctx context.Context, since uint64, followed bool) (*Stream, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(&request{Op: OpSubscribe, Since: since, Followed: followed})
	if err == nil {
		_, err = conn.Write(append(b, '\n'))
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	return &Stream{conn: conn, dec: jsontext.NewDecoder(bufio.NewReader(conn))}, nil
}

// Next returns the next entry, blocking until one arrives, ctx is done
// (ctx.Err()), or the node ends the stream (ErrStreamEnded). After an error the
// stream is closed.
func (s *Stream) Next(ctx context.Context) (view.Entry, error) {
	stop := context.AfterFunc(ctx, func() { s.conn.SetReadDeadline(time.Now()) })
	defer stop()
	var resp response
	if err := json.UnmarshalDecode(s.dec, &resp); err != nil {
		s.conn.Close()
		if ctx.Err() != nil {
			return view.Entry{}, ctx.Err()
		}
		return view.Entry{}, ErrStreamEnded
	}
	if resp.Error != nil {
		s.conn.Close()
		return view.Entry{}, resp.Error
	}
	if resp.Entry == nil {
		s.conn.Close()
		return view.Entry{}, fmt.Errorf("%w: a stream line without an entry", ErrBadRequest)
	}
	return *resp.Entry, nil
}

// Close ends the stream.
func (s *Stream) Close() error { return s.conn.Close() }
