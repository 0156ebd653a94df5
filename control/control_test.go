package control

import (
	"bufio"
	"context"
	"errors"

	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// bleve's analysis workers (package search, through datadir):
		// started once per process, at init, by design.
		goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"),
	)
}

// dirHandler serves a data dir opened in the test, as a node serves its
// own: the operations on the dir, its follows file, its log's entries.
type dirHandler struct {
	Local
	follows *datadir.Follows
	publish func(ctx context.Context) error // runs before each publish, when set
}

func (h dirHandler) Publish(ctx context.Context, tracker topics.TrackerID, things []topics.Thing, opts ...datadir.PublishOptions) ([]feed.Published, error) {
	if h.publish != nil {
		if err := h.publish(ctx); err != nil {
			return nil, err
		}
	}
	return h.Local.Publish(ctx, tracker, things, opts...)
}

func (h dirHandler) Follow(_ context.Context, fs datadir.FollowSet) error {
	return h.follows.Change(fs, datadir.FollowSet{})
}

func (h dirHandler) Unfollow(_ context.Context, fs datadir.FollowSet) error {
	return h.follows.Change(datadir.FollowSet{}, fs)
}

func (h dirHandler) Follows(context.Context) (datadir.FollowSet, error) { return h.follows.Get(), nil }

func (h dirHandler) Stream(ctx context.Context, since uint64, _ bool, send func(*view.Entry) error) error {
	r := h.Log.NewReader(since)
	for {
		e, err := r.Next(ctx)
		if err != nil {
			return err
		}
		if err := send(&e); err != nil {
			return err
		}
	}
}

// serve opens a new data dir with cfg and serves it; it returns the
// dir's path, the handler and the server.
func serve(t *testing.T, cfg feed.Config, tweak func(*dirHandler)) (string, *dirHandler, *Server) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "node")
	if _, _, err := datadir.InitIdentity(dir); err != nil {
		t.Fatal(err)
	}
	d, err := datadir.Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	f, err := datadir.LoadFollows(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := &dirHandler{Local: Local{d}, follows: f}
	if tweak != nil {
		tweak(h)
	}
	s, err := Serve(dir, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return dir, h, s
}

// TestErrorsKeepTheirIdentity: an operation fails with the same sentinel
// through a running node as on the dir itself.
func TestErrorsKeepTheirIdentity(t *testing.T) {
	ctx := context.Background()
	dir, h, _ := serve(t, feed.Config{MinFree: 1 << 60}, nil) // no disk has an EiB free
	c, err := Dial(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, ops := range map[string]Operations{"local": h.Local, "client": c} {
		_, err := ops.CreateTracker(ctx, topics.TrackerInfo{Name: "full"}, false)
		if !errors.Is(err, feed.ErrDiskFull) {
			t.Errorf("%s: create on a full disk: %v, want feed.ErrDiskFull", name, err)
		}
		_, err = ops.Publish(ctx, topics.TrackerID{}, nil)
		if !errors.Is(err, datadir.ErrNothingToPublish) {
			t.Errorf("%s: publish of nothing: %v, want datadir.ErrNothingToPublish", name, err)
		}
	}
}

func TestOperations(t *testing.T) {
	ctx := context.Background()
	dir, h, _ := serve(t, feed.Config{}, nil)
	c, err := Dial(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := c.CreateTracker(ctx, topics.TrackerInfo{Name: "parts"}, false)
	if err != nil || !tr.Created {
		t.Fatalf("create: %+v %v", tr, err)
	}
	stream, err := c.Subscribe(ctx, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	ps, err := c.Publish(ctx, tr.ID, []topics.Thing{{ID: "a", Title: "A", Version: "1"}, {ID: "b", Title: "B", Version: "1"}})
	if err != nil || len(ps) != 2 || !ps[0].New {
		t.Fatalf("publish: %+v %v", ps, err)
	}
	var got []topics.ID
	for len(got) < 4 { // the tracker, the node record, two Things
		e, err := stream.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.ID)
	}
	if got[2] != ps[0].ID || got[3] != ps[1].ID {
		t.Fatalf("streamed %v, published %+v", got, ps)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Node != h.ID.ID || st.Log.Entries != 4 {
		t.Fatalf("status: %+v %v", st, err)
	}
	if err := c.Follow(ctx, datadir.FollowSet{Trackers: []topics.TrackerID{tr.ID}}); err != nil {
		t.Fatal(err)
	}
	if fs, err := c.Follows(ctx); err != nil || len(fs.Trackers) != 1 || fs.Trackers[0] != tr.ID {
		t.Fatalf("follows: %+v %v", fs, err)
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := stream.Next(ctx2); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a done context: %v", err)
	}
}

// rawRequest sends raw bytes on a new connection and returns the answer line.
func rawRequest(t *testing.T, dir string, raw []byte) string {
	t.Helper()
	c, err := dial(context.Background(), Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go c.Write(raw) // the node may answer and close before reading it all
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return line
}

// TestBadRequests: what the node cannot take is refused in one short line
// that does not echo it, with the bad_request code.
func TestBadRequests(t *testing.T) {
	old := readTimeout
	readTimeout = 2 * time.Second
	t.Cleanup(func() { readTimeout = old })
	dir, _, _ := serve(t, feed.Config{}, nil)
	huge := `{"op":"` + strings.Repeat("x", MaxRequest) + `"}`
	for _, tc := range []struct{ name, raw, want string }{
		{"too large", huge, "larger than 8 MiB"},
		{"a long op", `{"op":"` + strings.Repeat("y", 64<<10) + `"}` + "\n", "unknown operation"},
		{"an unknown op", `{"op":"frobnicate"}` + "\n", `unknown operation \"frobnicate\"`},
		{"control characters", "{\"op\":\"a\\u001b[2J\"}\n", "unknown operation"},
		{"not JSON", "hello\n", "malformed JSON at byte 0"},
		{"a wrong type", `{"op":"publish","things":"x"}` + "\n", "a wrong type at /things"},
		{"silence", "", "no request within"},
	} {
		line := rawRequest(t, dir, []byte(tc.raw))
		if len(line) > 200 || !strings.Contains(line, `"code":"bad_request"`) || !strings.Contains(line, tc.want) {
			t.Errorf("%s: answered %.300q, want a short bad_request line with %q", tc.name, line, tc.want)
		}
	}
}

// TestNodeGoneMidRequest: a client whose node stops before answering is
// told the operation may have happened and that repeating it is safe.
func TestNodeGoneMidRequest(t *testing.T) {
	started := make(chan struct{})
	dir, _, s := serve(t, feed.Config{}, func(h *dirHandler) {
		h.publish = func(ctx context.Context) error {
			close(started)
			<-ctx.Done() // until the node stops
			return ctx.Err()
		}
	})
	c, err := Dial(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Publish(context.Background(), topics.TrackerID{}, []topics.Thing{{ID: "a", Title: "A"}})
		done <- err
	}()
	<-started
	s.Close()
	if err := <-done; !errors.Is(err, ErrNodeGone) || !strings.Contains(err.Error(), "repeating it is safe") {
		t.Fatalf("publish cut off: %v, want ErrNodeGone", err)
	}
	if _, err := Dial(context.Background(), dir); !errors.Is(err, ErrNoNode) {
		t.Fatalf("dial after Close: %v, want ErrNoNode", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
