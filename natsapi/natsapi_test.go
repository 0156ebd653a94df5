package natsapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/view"

	"github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go"

	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/node"
	"github.com/thingtracker/ttn/topics"
)

// The tests run real nodes with the embedded server on an ephemeral
// loopback port, and talk to it with nats.go as a plugin would.

func nodeConfig(t *testing.T, nc *natsapi.Config, join ...string) node.Config {
	cfg := nodetest.Config(t, join...)
	cfg.NATS = nc
	return cfg
}

func connect(t *testing.T, n *node.Node, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect("nats://"+n.NATSAddr(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// createTracker creates a tracker on n and returns its ID.
func createTracker(t *testing.T, n *node.Node, name string) topics.TrackerID {
	t.Helper()
	r, err := n.CreateTracker(context.Background(), topics.TrackerInfo{Name: name, Title: name}, false)
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func things(prefix string, count int, tags ...string) []topics.Thing {
	out := make([]topics.Thing, count)
	for i := range out {
		out[i] = topics.Thing{ID: fmt.Sprintf("%s-%d", prefix, i), Title: fmt.Sprintf("%s number %d", prefix, i), Version: "1", Tags: tags}
	}
	return out
}

func publish(t *testing.T, n *node.Node, tracker topics.TrackerID, ts []topics.Thing) {
	t.Helper()
	if _, err := n.Publish(context.Background(), tracker, ts); err != nil {
		t.Fatal(err)
	}
}

// request sends a request and decodes the reply into out; it returns the
// error reply's reason, if any.
func request(t *testing.T, nc *nats.Conn, subject string, body any, out any) (code, reason string) {
	t.Helper()
	data, ok := body.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	m, err := nc.Request(subject, data, 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	if code := m.Header.Get("Nats-Service-Error-Code"); code != "" {
		var e natsapi.ErrorReply
		if err := json.Unmarshal(m.Data, &e); err != nil || e.Error != m.Header.Get("Nats-Service-Error") {
			t.Fatalf("%s: error reply %q does not match its header (%v)", subject, m.Data, err)
		}
		return code, e.Error
	}
	if out != nil {
		if err := json.Unmarshal(m.Data, out); err != nil {
			t.Fatalf("%s: reply %q: %v", subject, m.Data, err)
		}
	}
	return "", ""
}

// checkMessage checks one announcement message: subject, headers and body
// agree with the envelope, and the envelope verifies.
func checkMessage(t *testing.T, m *nats.Msg) view.Entry {
	t.Helper()
	env, err := base64.StdEncoding.DecodeString(m.Header.Get(natsapi.HeaderEnvelope))
	if err != nil {
		t.Fatalf("%s: Ttn-Envelope: %v", m.Subject, err)
	}
	a, err := topics.Validate("", env, time.Time{})
	if err != nil {
		t.Fatalf("%s: envelope does not verify: %v", m.Subject, err)
	}
	cursor, err := strconv.ParseUint(m.Header.Get(natsapi.HeaderCursor), 10, 64)
	if err != nil || cursor == 0 {
		t.Fatalf("%s: Ttn-Cursor %q", m.Subject, m.Header.Get(natsapi.HeaderCursor))
	}
	sum := sha256.Sum256(env)
	switch {
	case m.Subject != natsapi.Subject(a.Payload.Tracker, a.Payload.Kind):
		t.Fatalf("subject %s for a %s on %s", m.Subject, a.Payload.Kind, a.Payload.Tracker)
	case m.Header.Get(natsapi.HeaderID) != topics.ID(sum).String() || a.ID != topics.ID(sum):
		t.Fatalf("Ttn-Id %s, envelope hashes to %x", m.Header.Get(natsapi.HeaderID), sum)
	case m.Header.Get(natsapi.HeaderAuthor) != a.Payload.Author:
		t.Fatalf("Ttn-Author %s, signed by %s", m.Header.Get(natsapi.HeaderAuthor), a.Payload.Author)
	case m.Header.Get(natsapi.HeaderSeq) != strconv.FormatUint(a.Payload.Seq, 10):
		t.Fatalf("Ttn-Seq %s, signed %d", m.Header.Get(natsapi.HeaderSeq), a.Payload.Seq)
	case string(m.Data) != string(a.Env.Payload):
		t.Fatalf("body is not the signed payload")
	}
	return view.NewEntry(cursor, a)
}

// TestFanOut: every announcement a node accepts, its own and those it
// syncs or receives from a peer, reaches a plugin once, with headers that
// match the envelope, and the envelope verifies.
func TestFanOut(t *testing.T) {
	ctx := context.Background()
	author := nodetest.Start(t, nodeConfig(t, nil))
	tr := createTracker(t, author, "designs")
	publish(t, author, tr, things("old", 20)) // before the follower exists: it syncs these

	cfg := nodeConfig(t, &natsapi.Config{Addr: "127.0.0.1:0"}, author.GossipAddr())
	cfg.Follow = datadir.FollowSet{Trackers: []topics.TrackerID{tr}}
	n, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Leave(ctx) })
	plugin := connect(t, n)
	sub, err := plugin.SubscribeSync(natsapi.AnnouncePrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	plugin.Flush()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	publish(t, author, tr, things("live", 30))      // received over GossipSub
	own := createTracker(t, n, "mine")              // the node's own
	publish(t, n, own, things("own", 10, "plugin")) // also on its own tracker

	// Entries 1..Last of n's log: its own tracker, node record and Things,
	// and the author's tracker and 50 Things, synced or received; each once.
	wait.For(t, 10*time.Second, func() error {
		if got := n.Log.Stats().Entries; got < 1+50+2+10 {
			return fmt.Errorf("log holds %d entries", got)
		}
		return nil
	})
	last := n.Log.Last()
	seen := map[uint64]bool{}
	kinds := map[string]int{}
	for len(seen) < int(last) {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d of %d announcements: %v", len(seen), last, err)
		}
		e := checkMessage(t, m)
		if seen[e.Cursor] {
			t.Fatalf("cursor %d twice", e.Cursor)
		}
		stored, err := n.Log.Entry(e.Cursor)
		if err != nil || stored.ID != e.ID {
			t.Fatalf("cursor %d is %s in the log, %s on NATS (%v)", e.Cursor, stored.ID, e.ID, err)
		}
		seen[e.Cursor] = true
		kinds[e.Kind]++
	}
	if m, err := sub.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("unexpected extra message %s %s", m.Subject, m.Header.Get(natsapi.HeaderCursor))
	}
	if kinds[topics.KindThing] != 60 || kinds[topics.KindTracker] != 2 {
		t.Fatalf("kinds %v", kinds)
	}
	st, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.NATS == nil || st.NATS.Fanned != last || st.NATS.Cursor != last || st.NATS.Lag != 0 || st.NATS.Clients != 1 {
		t.Fatalf("nats stats %+v, last %d", st.NATS, last)
	}
}

// TestPublishAuth: without authentication nobody publishes through the
// node; a token admits its holders and refuses everyone else; with users,
// only those allowed ttn.api.publish may.
func TestPublishAuth(t *testing.T) {
	body := func(tr topics.TrackerID, id string) []byte {
		return fmt.Appendf(nil, `{"tracker":%q,"thing":{"id":%q,"title":"From a plugin","version":"2"}}`, tr, id)
	}

	t.Run("none", func(t *testing.T) {
		n := nodetest.Start(t, nodeConfig(t, &natsapi.Config{Addr: "0"}))
		tr := createTracker(t, n, "t")
		last := n.Log.Last()
		code, reason := request(t, connect(t, n), "ttn.api.publish", body(tr, "x"), nil)
		if code != "403" || reason == "" || n.Log.Last() != last {
			t.Fatalf("unauthenticated publish: %s %q", code, reason)
		}
	})

	t.Run("token", func(t *testing.T) {
		n := nodetest.Start(t, nodeConfig(t, &natsapi.Config{Addr: "0", Token: "s3cret-token"}))
		tr := createTracker(t, n, "t")
		if _, err := nats.Connect("nats://" + n.NATSAddr()); err == nil {
			t.Fatal("a client without the token connected")
		}
		if _, err := nats.Connect("nats://"+n.NATSAddr(), nats.Token("wrong")); err == nil {
			t.Fatal("a client with a wrong token connected")
		}
		var r view.PublishResult
		if code, reason := request(t, connect(t, n, nats.Token("s3cret-token")), "ttn.api.publish", body(tr, "x"), &r); code != "" {
			t.Fatalf("publish with the token: %s %s", code, reason)
		}
		checkPublished(t, n, r, tr, "x")
	})

	t.Run("users", func(t *testing.T) {
		conf := "../examples/nats/users.conf" // the README's example
		n := nodetest.Start(t, nodeConfig(t, &natsapi.Config{Addr: "0", ConfigFile: conf}))
		tr := createTracker(t, n, "t")
		if _, err := nats.Connect("nats://" + n.NATSAddr()); err == nil {
			t.Fatal("a client without credentials connected")
		}
		var r view.PublishResult
		if code, reason := request(t, connect(t, n, nats.UserInfo("publisher", "change-me-publisher")), "ttn.api.publish", body(tr, "x"), &r); code != "" {
			t.Fatalf("publisher: %s %s", code, reason)
		}
		checkPublished(t, n, r, tr, "x")

		last := n.Log.Last()
		reader := connect(t, n, nats.UserInfo("reader", "change-me-reader"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		if _, err := reader.Request("ttn.api.publish", body(tr, "y"), 500*time.Millisecond); err == nil {
			t.Fatal("reader published")
		}
		var st view.Status
		if code, reason := request(t, reader, "ttn.api.status", nil, &st); code != "" || st.Node != n.ID.ID {
			t.Fatalf("reader's status: %s %s %+v", code, reason, st)
		}
		if n.Log.Last() != last {
			t.Fatal("the reader's refused publish changed the log")
		}
	})
}

// checkPublished checks that a publish reply names a new announcement of
// the Thing in the log.
func checkPublished(t *testing.T, n *node.Node, r view.PublishResult, tr topics.TrackerID, thing string) {
	t.Helper()
	if len(r.Published) != 1 || !r.Published[0].New {
		t.Fatalf("publish result %+v", r)
	}
	s, err := n.Log.Thing(tr, thing)
	if err != nil || s.Latest().Version != "2" || s.Latest().Latest().ID != r.Published[0].ID {
		t.Fatalf("thing %s after publish: %+v, %v", thing, s, err)
	}
}
