package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/trust"
	"github.com/thingtracker/ttn/view"
)

// trustNet is a set of named nodes on loopback, all members of the first's
// memberlist. A record published while a node was starting to follow its
// author's node tracker (the subscription not yet known to the author) is
// repaired by anti-entropy, every second here.
type trustNet map[string]*Node

func newTrustNet(t *testing.T, names ...string) trustNet {
	net := trustNet{}
	config := func(name string, join ...string) Config {
		c := fastConfig(t.TempDir()+"/"+name, join...)
		c.AntiEntropyInterval = time.Second
		return c
	}
	first := startNode(t, config(names[0]))
	net[names[0]] = first
	for _, name := range names[1:] {
		net[name] = startNode(t, config(name, first.GossipAddr()))
	}
	return net
}

// trust has author say level of subject.
func (net trustNet) trust(t *testing.T, author, level, subject string) {
	t.Helper()
	fp := ""
	if level == string(topics.TrustVerified) {
		fp = net[subject].ID.Fingerprint
	}
	if _, err := net[author].Trust(context.Background(), net[subject].ID.ID, topics.TrustLevel(level), fp, ""); err != nil {
		t.Fatal(err)
	}
}

// waitLevel waits until node sees subject at level, hop hops (when not 0).
func (net trustNet) waitLevel(t *testing.T, node, subject string, level trust.Level, hops int, introducers ...string) {
	t.Helper()
	var ids []string
	for _, name := range introducers {
		ids = append(ids, net[name].ID.ID)
	}
	slices.Sort(ids)
	wait.For(t, 20*time.Second, func() error {
		v := net[node].book.Level(net[subject].ID.ID)
		if v.Level != level || (hops != 0 && v.Hops != hops) || (ids != nil && !slices.Equal(v.Introducers, ids)) {
			return fmt.Errorf("%s sees %s as %+v, want %s at hop %d via %v", node, subject, v, level, hops, introducers)
		}
		return nil
	})
}

// listed returns the Thing summary of thing in node's default listing of
// tracker, or nil; with flagged, the listing that includes flagged Things.
func listed(t *testing.T, n *Node, tracker topics.TrackerID, thing string, flagged bool) *view.ThingSummary {
	t.Helper()
	page, err := n.Things(context.Background(), view.ThingsQuery{Tracker: tracker, Flagged: flagged})
	if err != nil {
		t.Fatal(err)
	}
	for i := range page.Things {
		if page.Things[i].ID == thing {
			return &page.Things[i]
		}
	}
	return nil
}

// TestThreeHopWeb is issue 14's acceptance on real nodes over loopback: A
// verifies B by fingerprint, B trusts C, C marks D marginal; A sees B
// verified, C web via B, D unknown until two more of A's web vouch for D.
// A flag by C alone marks D's Thing in A's views but does not hide it; a
// flag by B hides it from A's listings; withdrawing B's flag shows it
// again. A distrust record by A for D stops A from storing D's
// announcements.
func TestThreeHopWeb(t *testing.T) {
	ctx := context.Background()
	net := newTrustNet(t, "A", "B", "C", "D", "E", "F")
	a, b, d := net["A"], net["B"], net["D"]

	// D's Thing, which A and B follow.
	tr, err := d.CreateTracker(ctx, topics.TrackerInfo{Name: "things"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Publish(ctx, tr.ID, []topics.Thing{{ID: "widget", Title: "Widget", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{a, b} {
		if err := n.Follow(ctx, datadir.FollowSet{Trackers: []topics.TrackerID{tr.ID}}); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 20*time.Second, func() error {
		if listed(t, a, tr.ID, "widget", false) == nil {
			return errors.New("A does not list D's widget yet")
		}
		return nil
	})

	// A fingerprint that does not match is refused, and nothing recorded.
	last := a.Log.Last()
	if _, err := a.Trust(ctx, b.ID.ID, topics.TrustVerified, net["C"].ID.Fingerprint, ""); !errors.Is(err, datadir.ErrFingerprintMismatch) {
		t.Fatalf("verifying B with C's fingerprint: %v, want ErrFingerprintMismatch", err)
	}
	if a.Log.Last() != last {
		t.Fatal("a refused trust record changed the log")
	}

	net.trust(t, "A", "verified", "B")
	net.trust(t, "B", "trusted", "C")
	net.trust(t, "C", "marginal", "D")
	net.waitLevel(t, "A", "B", trust.Verified, 1)
	net.waitLevel(t, "A", "C", trust.Web, 2, "B")
	// C's record on D has reached A (A follows C's node tracker since C
	// became web), and one marginal introduction is not enough.
	wait.For(t, 20*time.Second, func() error {
		d, err := a.NodeDetail(ctx, d.ID.ID)
		if err != nil || len(d.TrustReceived) != 1 {
			return fmt.Errorf("A holds %d trust records on D (%v), want C's", len(d.TrustReceived), err)
		}
		return nil
	})
	if l := a.book.Level(d.ID.ID).Level; l != trust.Unknown {
		t.Fatalf("A sees D as %s with one marginal introduction, want unknown", l)
	}
	net.trust(t, "B", "trusted", "E")
	net.trust(t, "B", "trusted", "F")
	net.trust(t, "E", "marginal", "D")
	net.waitLevel(t, "A", "E", trust.Web, 2, "B")
	if l := a.book.Level(d.ID.ID).Level; l != trust.Unknown {
		t.Fatalf("A sees D as %s with two marginal introductions, want unknown", l)
	}
	net.trust(t, "F", "marginal", "D")
	net.waitLevel(t, "A", "D", trust.Web, 3, "C", "E", "F")

	// Flags.
	widget := topics.FlagTarget{Tracker: tr.ID, Thing: "widget"}
	flag := func(who string, withdraw bool) {
		t.Helper()
		f := topics.Flag{Target: widget, Reason: topics.FlagMalware}
		if withdraw {
			f = topics.Flag{Target: widget, Withdraw: true}
		}
		if _, err := net[who].Flag(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	flag("C", false)
	wait.For(t, 20*time.Second, func() error {
		s := listed(t, a, tr.ID, "widget", false)
		if s == nil || len(s.Flags.Flags) != 1 || s.Flags.Flagged || !s.Flags.Flags[0].Counts || s.Flags.Flags[0].Author != net["C"].ID.ID {
			return fmt.Errorf("A lists widget as %+v, want marked by C's counting flag, not flagged", s)
		}
		return nil
	})
	flag("B", false)
	wait.For(t, 20*time.Second, func() error {
		if s := listed(t, a, tr.ID, "widget", false); s != nil {
			return fmt.Errorf("A still lists widget, flagged by B: %+v", s.Flags)
		}
		return nil
	})
	if s := listed(t, a, tr.ID, "widget", true); s == nil || !s.Flags.Flagged || len(s.Flags.Flags) != 2 {
		t.Fatalf("A's listing with flagged Things: %+v, want widget flagged by B and C", s)
	}
	th, err := a.Thing(ctx, tr.ID, "widget")
	if err != nil || !th.Flags.Flagged || th.Trust != string(trust.Web) {
		t.Fatalf("A's view of widget: %+v %v, want flagged, author web", th, err)
	}
	flag("B", true)
	wait.For(t, 20*time.Second, func() error {
		if s := listed(t, a, tr.ID, "widget", false); s == nil || s.Flags.Flagged {
			return fmt.Errorf("A lists widget as %+v after B withdrew, want shown, not flagged", s)
		}
		return nil
	})

	// A distrusts D: D's next Thing reaches B, not A's log.
	net.trust(t, "A", "distrusted", "D")
	net.waitLevel(t, "A", "D", trust.Distrusted, 1)
	ignored := a.net.Stats().IgnoredAuthors
	if _, err := d.Publish(ctx, tr.ID, []topics.Thing{{ID: "gadget", Title: "Gadget", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 20*time.Second, func() error {
		if listed(t, b, tr.ID, "gadget", false) == nil {
			return errors.New("B has not D's gadget yet")
		}
		if a.net.Stats().IgnoredAuthors == ignored {
			return errors.New("A has not ignored D's gadget yet")
		}
		return nil
	})
	if _, err := a.Thing(ctx, tr.ID, "gadget"); !errors.Is(err, view.ErrNotFound) {
		t.Fatalf("A stored D's gadget after distrusting D: %v", err)
	}
}

// TestFollowsPublished: a node's follows go into its node record (unless
// private), so that another node can follow a node with what it follows.
func TestFollowsPublished(t *testing.T) {
	ctx := context.Background()
	net := newTrustNet(t, "maker", "owner")
	maker, owner := net["maker"], net["owner"]
	tr, err := owner.CreateTracker(ctx, topics.TrackerInfo{Name: "jigs"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Publish(ctx, tr.ID, []topics.Thing{{ID: "clamp", Title: "Clamp", Version: "1"}}); err != nil {
		t.Fatal(err)
	}

	// The maker's follows are public: its node record lists them.
	cfg := fastConfig(t.TempDir()+"/public", maker.GossipAddr())
	cfg.PrivateFollows = false
	cfg.Follow = datadir.FollowSet{Trackers: []topics.TrackerID{tr.ID}}
	public := startNode(t, cfg)
	if err := maker.Follow(ctx, datadir.FollowSet{Nodes: []string{public.ID.ID}}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 20*time.Second, func() error {
		d, err := maker.NodeDetail(ctx, public.ID.ID)
		if err != nil || d.Follows == nil || !slices.Equal(d.Follows.Trackers, []topics.TrackerID{tr.ID}) {
			return fmt.Errorf("the maker sees the public node's follows as %+v (%v)", d, err)
		}
		return nil
	})

	// A node following the public node's follows gets the owner's Thing.
	cfg = fastConfig(t.TempDir()+"/fan", maker.GossipAddr())
	cfg.FollowFollows = []string{public.ID.ID}
	fan := startNode(t, cfg)
	wait.For(t, 20*time.Second, func() error {
		if _, err := fan.Thing(ctx, tr.ID, "clamp"); err != nil {
			return fmt.Errorf("the fan has not the clamp: %v", err)
		}
		return nil
	})
	if !fan.Followed(tr.ID) {
		t.Error("the fan does not follow the tracker the public node follows")
	}

	// Made private, the follows leave the node record.
	public.cfg.PrivateFollows = true
	public.followsChanged()
	wait.For(t, 20*time.Second, func() error {
		d, err := maker.NodeDetail(ctx, public.ID.ID)
		if err != nil || d.Follows != nil {
			return fmt.Errorf("the maker still sees the public node's follows %+v (%v)", d.Follows, err)
		}
		return nil
	})
}
