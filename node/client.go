package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
)

// ErrNoNode means no node serves the data dir.
var ErrNoNode = errors.New("no node is running on the data dir")

// Dir is what the CLI asks of a data dir. A running node serves it over the
// control socket (Client); without one, the CLI opens the dir itself (Core),
// and what it appends is announced when a node next runs.
type Dir interface {
	CreateTracker(ctx context.Context, info topics.TrackerInfo, update bool) (TrackerResult, error)
	Publish(ctx context.Context, tracker topics.TrackerID, things []topics.Thing) ([]feed.Published, error)
	Import(ctx context.Context, doc *ttn.Document) (ImportResult, error)
	Retract(ctx context.Context, id topics.ID) (feed.Published, error)
	Ingest(ctx context.Context, envelopes [][]byte) (IngestResult, error)
	Entries(ctx context.Context, since uint64, limit int) ([]topics.Entry, error)
	Status(ctx context.Context) (*Status, error)
	Close() error
}

var (
	_ Dir = (*Core)(nil)
	_ Dir = (*Client)(nil)
)

// Open returns the running node's client when a node serves dir, and
// otherwise opens dir in this process.
func Open(dir string) (Dir, error) {
	c, err := Dial(dir)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, ErrNoNode) {
		return nil, err
	}
	return OpenCore(dir, feed.Config{})
}

// Client talks to the node serving a data dir, over its control socket.
// Each call is one connection; a Client may be used concurrently.
type Client struct{ path string }

// Dial returns a client of the node serving dir, or ErrNoNode.
func Dial(dir string) (*Client, error) {
	c := &Client{path: ControlPath(dir)}
	conn, err := c.dial(context.Background())
	if err != nil {
		return nil, err
	}
	conn.Close()
	return c, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "unix", c.path)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, ErrNoNode
	}
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return conn, nil
}

// call sends one request and decodes its result into out (when not nil).
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
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	var resp response
	if err := json.UnmarshalRead(bufio.NewReader(conn), &resp); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("control socket: %w", err)
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	if out == nil || len(resp.Result) == 0 {
		return nil
	}
	return json.Unmarshal(resp.Result, out)
}

// CreateTracker asks the node to create a tracker (see Core.CreateTracker).
func (c *Client) CreateTracker(ctx context.Context, info topics.TrackerInfo, update bool) (r TrackerResult, err error) {
	err = c.call(ctx, &request{Op: "create_tracker", Info: &info, Update: update}, &r)
	return r, err
}

// Publish asks the node to publish Things (see Core.Publish).
func (c *Client) Publish(ctx context.Context, tracker topics.TrackerID, things []topics.Thing) (ps []feed.Published, err error) {
	err = c.call(ctx, &request{Op: "publish", Tracker: tracker, Things: things}, &ps)
	return ps, err
}

// Import asks the node to import a document (see Core.Import).
func (c *Client) Import(ctx context.Context, doc *ttn.Document) (r ImportResult, err error) {
	err = c.call(ctx, &request{Op: "import", Doc: doc}, &r)
	return r, err
}

// Retract asks the node to retract (see Core.Retract).
func (c *Client) Retract(ctx context.Context, id topics.ID) (p feed.Published, err error) {
	err = c.call(ctx, &request{Op: "retract", ID: id}, &p)
	return p, err
}

// Ingest asks the node to ingest envelopes (see Core.Ingest).
func (c *Client) Ingest(ctx context.Context, envelopes [][]byte) (r IngestResult, err error) {
	err = c.call(ctx, &request{Op: "ingest", Envelopes: envelopes}, &r)
	return r, err
}

// Entries returns up to limit log entries after since.
func (c *Client) Entries(ctx context.Context, since uint64, limit int) (es []topics.Entry, err error) {
	err = c.call(ctx, &request{Op: "entries", Since: since, Limit: limit}, &es)
	return es, err
}

// Status returns the running node's status.
func (c *Client) Status(ctx context.Context) (s *Status, err error) {
	err = c.call(ctx, &request{Op: "status"}, &s)
	return s, err
}

// Follow asks the node to follow trackers and nodes.
func (c *Client) Follow(ctx context.Context, fs FollowSet) error {
	return c.call(ctx, &request{Op: "follow", Trackers: fs.Trackers, Nodes: fs.Nodes}, nil)
}

// Unfollow asks the node to stop following trackers and nodes.
func (c *Client) Unfollow(ctx context.Context, fs FollowSet) error {
	return c.call(ctx, &request{Op: "unfollow", Trackers: fs.Trackers, Nodes: fs.Nodes}, nil)
}

// Close does nothing: every call has its own connection.
func (c *Client) Close() error { return nil }

// Stream is a live feed of entries from a running node.
type Stream struct {
	conn net.Conn
	dec  *jsontext.Decoder
	stop func() bool
}

// Subscribe streams the node's entries after since, as they arrive: all of
// them, or, with followed, those of the trackers it follows (itself or
// through a followed node, as that changes).
func (c *Client) Subscribe(ctx context.Context, since uint64, followed bool) (*Stream, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(&request{Op: "subscribe", Since: since, Followed: followed})
	if err == nil {
		_, err = conn.Write(append(b, '\n'))
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &Stream{
		conn: conn,
		dec:  jsontext.NewDecoder(bufio.NewReader(conn)),
		stop: context.AfterFunc(ctx, func() { conn.Close() }),
	}, nil
}

// Next returns the next entry, blocking until one arrives, the context of
// Subscribe is done, or the node stops.
func (s *Stream) Next() (topics.Entry, error) {
	var resp response
	if err := json.UnmarshalDecode(s.dec, &resp); err != nil {
		return topics.Entry{}, fmt.Errorf("stream ended: %w", err)
	}
	if resp.Error != "" {
		return topics.Entry{}, errors.New(resp.Error)
	}
	if resp.Entry == nil {
		return topics.Entry{}, errors.New("stream: a line without an entry")
	}
	return *resp.Entry, nil
}

// Close ends the stream.
func (s *Stream) Close() error {
	s.stop()
	return s.conn.Close()
}
