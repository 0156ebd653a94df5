package main

import (
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/thingtracker/ttn/cmd/internal/flags"
	"github.com/thingtracker/ttn/cmd/internal/output"
	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/httpapi"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/node"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
	"github.com/thingtracker/ttn/view"
)

// demoTracker is the TTN specification's own example tracker document
// (garyhodgson/thing-tracker-network, examples/example-tracker.json).
//
//go:embed demo/tracker.json
var demoTracker []byte

func demoCmd() *ffcli.Command {
	// The demo's nodes live in temporary dirs: it takes no --data or
	// --config, unlike the other commands.
	fs := flag.NewFlagSet("announcer demo", flag.ContinueOnError)
	fs.SetOutput(&flags.UsageText)
	keep := fs.Bool("keep", false, "keep the temporary data dirs")
	stay := fs.Bool("stay", false, "keep the network running at the end, to browse the follower's pages, until Ctrl-C")
	return &ffcli.Command{
		Name: "demo", ShortUsage: "announcer demo [--keep] [--stay]", FlagSet: fs,
		ShortHelp: "Run a small network on loopback and show it at work.",
		LongHelp: `Starts three nodes in temporary data dirs, on loopback with ephemeral ports:
an announcer; a follower, which joins it and follows one tracker; and an
indexer, which joins the follower and follows every tracker it discovers.
The announcer imports the TTN specification's example tracker, announces a
new version and an edit of one of its Things, and retracts the version; the
follower and the indexer print what reaches them, each envelope verified.
Ends by itself (or on Ctrl-C); --keep leaves the data dirs to explore;
--stay keeps the network up to browse the follower's pages.`,
		Exec: func(ctx context.Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			root, err := os.MkdirTemp("", "ttn-demo-")
			if err != nil {
				return err
			}
			if *keep {
				defer fmt.Printf("\ndata dirs kept in %s (try: announcer log --data %s/announcer)\n", root, root)
			} else {
				defer os.RemoveAll(root)
			}
			return demo(ctx, root, *stay)
		},
	}
}

// demoNode starts one demo node; with plugins, it runs a NATS server and
// the HTTP API on ephemeral loopback ports.
func demoNode(ctx context.Context, dir string, join []string, promiscuous, plugins bool) (*node.Node, error) {
	cfg := node.Config{
		Dir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, GossipAddr: "127.0.0.1:0", Join: join,
		Promiscuous: promiscuous,
		// The follower's follows stay out of a node record: the demo shows
		// what the announcer sends.
		PrivateFollows: true,
		Heartbeat:      200 * time.Millisecond, ProbeInterval: 500 * time.Millisecond,
		DiscoveryInterval: 5 * time.Second, ReadyTimeout: 5 * time.Second,
	}
	if plugins {
		cfg.NATS = &natsapi.Config{Addr: "0"}
		cfg.HTTP = &httpapi.Config{Addr: "0"}
	}
	n, err := node.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return n, n.WaitReady(ctx)
}

// watch prints, as "name ← …", every entry of another node that reaches n,
// verifying each.
func watch(ctx context.Context, name string, n *node.Node, mu *sync.Mutex, got map[string]int) {
	r := n.Log.NewReader(0)
	for {
		e, err := r.Next(ctx)
		if err != nil {
			return
		}
		if e.Author == n.ID.ID {
			continue
		}
		verdict := "verified"
		if _, err := topics.Validate(e.Topic, e.Envelope, time.Time{}); err != nil {
			verdict = "INVALID: " + err.Error()
		}
		mu.Lock()
		got[name]++
		fmt.Printf("  %-9s ← %-7s %s (%s)\n", name, e.Kind, output.Describe(&e), verdict)
		mu.Unlock()
	}
}

func demo(ctx context.Context, root string, stay bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	doc, err := ttn.ParseDocument(demoTracker)
	if err != nil {
		return err
	}
	adir := filepath.Join(root, "announcer")
	id, _, err := datadir.InitIdentity(adir)
	if err != nil {
		return err
	}
	tracker := topics.DeriveTrackerID(id.RawKey, doc.Info.Name)

	fmt.Println("== three nodes on loopback")
	a, err := demoNode(ctx, adir, nil, false, false)
	if err != nil {
		return err
	}
	defer a.Leave(context.Background())
	fmt.Printf("  announcer %s  gossip %s\n", a.ID.ID, a.GossipAddr())
	f, err := demoNode(ctx, filepath.Join(root, "follower"), []string{a.GossipAddr()}, false, true)
	if err != nil {
		return err
	}
	defer f.Leave(context.Background())
	// Followed once ready: a tracker nobody announces yet has no peers to
	// wait for.
	if err := f.Follow(ctx, datadir.FollowSet{Trackers: []topics.TrackerID{tracker}}); err != nil {
		return err
	}
	fmt.Printf("  follower  %s  joined the announcer; follows tracker %s\n", f.ID.ID, tracker)
	fmt.Printf("            plugins reach it on nats://%s, browsers on http://%s\n", f.NATSAddr(), f.HTTPAddr())
	ix, err := demoNode(ctx, filepath.Join(root, "indexer"), []string{f.GossipAddr()}, true, false)
	if err != nil {
		return err
	}
	defer ix.Leave(context.Background())
	fmt.Printf("  indexer   %s  joined the follower; follows what it discovers\n", ix.ID.ID)

	plugin, err := startPlugin(f.NATSAddr(), tracker)
	if err != nil {
		return err
	}
	defer plugin.nc.Close()

	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for name, n := range map[string]*node.Node{"follower": f, "indexer": ix} {
		wg.Add(1)
		go func() { defer wg.Done(); watch(ctx, name, n, &mu, got) }()
	}
	defer wg.Wait()
	defer cancel()

	fmt.Printf("\n== the announcer creates tracker %q; its discovery record reaches the indexer\n", doc.Info.Name)
	if _, err := a.CreateTracker(ctx, doc.Info, true); err != nil {
		return err
	}
	if err := waitUntil(ctx, 10*time.Second, func() bool { return ix.Followed(tracker) }); err != nil {
		return errors.New("the indexer did not discover the tracker")
	}
	fmt.Printf("  indexer   follows %s now\n", tracker)
	// The announcer sends to the peers it knows on the topic: wait until
	// it knows both.
	if err := waitUntil(ctx, 10*time.Second, func() bool { return a.TopicPeers(tracker) >= 2 }); err != nil {
		return errors.New("the follower and the indexer did not reach the announcer's topic")
	}

	fmt.Println("\n== the announcer imports the TTN example tracker")
	r, err := a.Import(ctx, doc)
	if err != nil {
		return err
	}
	fmt.Printf("  announcer published %d Things\n", len(r.Published))
	waitArrivals(ctx, &mu, got, 1+len(r.Published))

	beest := doc.Things[0]
	v2, edit := beest, beest
	v2.Version, v2.Title = "2", beest.Title+" II"
	edit.Description = "Fixed a typo. " + beest.Description
	fmt.Printf("\n== a new version of %q, and an edit of version %s\n", beest.Title, beest.Version)
	ps, err := a.Publish(ctx, tracker, []topics.Thing{v2, edit})
	if err != nil {
		return err
	}
	waitArrivals(ctx, &mu, got, 3+len(r.Published))

	fmt.Println("\n== version 2 is retracted")
	if _, err := a.Retract(ctx, ps[0].ID); err != nil {
		return err
	}
	waitArrivals(ctx, &mu, got, 4+len(r.Published))
	st, err := f.Log.Thing(tracker, beest.ID)
	if err != nil {
		return err
	}
	fmt.Printf("  follower  now shows version %s of %q as the latest\n", st.Latest().Version, beest.Title)

	fmt.Println("\n== a plugin on the follower, over NATS")
	if err := plugin.report(ctx, tracker, 4); err != nil { // two Things, a version, an edit
		return err
	}
	fmt.Println("\n== the follower's HTTP API")
	if err := showDocument(ctx, f.HTTPAddr(), tracker); err != nil {
		return err
	}

	mu.Lock()
	fmt.Printf("\n== done: the follower received %d announcements, the indexer %d\n", got["follower"], got["indexer"])
	mu.Unlock()
	if stay {
		fmt.Printf("\nthe follower's pages: http://%s/ (the network runs until Ctrl-C)\n", f.HTTPAddr())
		<-ctx.Done()
	}
	return nil
}

// showDocument fetches the tracker as a TTN tracker document from the HTTP
// API and reads it back.
func showDocument(ctx context.Context, addr string, tracker topics.TrackerID) error {
	path := "/v1/trackers/" + tracker.String()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	doc, err := ttn.ParseDocument(b)
	if err != nil {
		return fmt.Errorf("GET %s: %d: %w", path, resp.StatusCode, err)
	}
	fmt.Printf("  GET %s → a TTN tracker document, %d Things:", path, len(doc.Things))
	for _, t := range doc.Things {
		fmt.Printf(" %q version %s;", t.Title, t.Version)
	}
	fmt.Println()
	return nil
}

// demoPlugin is what a plugin does: it counts the Thing announcements of a
// tracker, verifying each envelope, and asks the node questions.
type demoPlugin struct {
	nc       *nats.Conn
	mu       sync.Mutex
	verified int
}

func startPlugin(addr string, tracker topics.TrackerID) (*demoPlugin, error) {
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		return nil, err
	}
	p := &demoPlugin{nc: nc}
	_, err = nc.Subscribe(natsapi.Subject(tracker, topics.KindThing), func(m *nats.Msg) {
		env, err := base64.StdEncoding.DecodeString(m.Header.Get(natsapi.HeaderEnvelope))
		if err == nil {
			_, err = topics.Validate("", env, time.Time{})
		}
		p.mu.Lock()
		if err == nil {
			p.verified++
		}
		p.mu.Unlock()
	})
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return p, nil
}

// report waits (up to 5 s) for want announcements, then says what the
// plugin received and asks the node for the Things tagged "fun".
func (p *demoPlugin) report(ctx context.Context, tracker topics.TrackerID, want int) error {
	waitUntil(ctx, 5*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.verified >= want
	})
	p.mu.Lock()
	fmt.Printf("  plugin    received %d Thing announcements on %s, each envelope verified\n", p.verified, natsapi.Subject(tracker, topics.KindThing))
	p.mu.Unlock()
	m, err := p.nc.Request(natsapi.APIPrefix+"things", []byte(`{"tag":"fun"}`), 5*time.Second)
	if err != nil {
		return err
	}
	var page view.ThingsPage
	if err := json.Unmarshal(m.Data, &page); err != nil {
		return fmt.Errorf("ttn.api.things: %q: %w", m.Data, err)
	}
	for _, t := range page.Things {
		fmt.Printf("  plugin    ttn.api.things {\"tag\":\"fun\"} → %q version %s\n", t.Thing.Title, t.Version)
	}
	return nil
}

// waitArrivals waits (up to 10 s) until each watcher has received n entries.
func waitArrivals(ctx context.Context, mu *sync.Mutex, got map[string]int, n int) {
	waitUntil(ctx, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got["follower"] >= n && got["indexer"] >= n-1 // the indexer joined after the tracker announcement
	})
}

func waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
