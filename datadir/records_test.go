package datadir

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
)

// nodeRecord returns c's latest node record as signed.
func nodeRecord(t *testing.T, c *Dir) *topics.Announcement {
	t.Helper()
	nt, err := c.Log.Tracker(c.ID.NodeTracker())
	if err != nil || nt.Info == nil {
		t.Fatalf("node tracker: %+v %v", nt, err)
	}
	a, err := c.Log.Announcement(nt.Info.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// otherNode returns the node ID and raw key of a node with a key from seed.
func otherNode(t *testing.T, seed byte) (string, []byte) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := topics.NodeID(k.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := topics.RawPublicKey(k.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	return id, raw
}

// unchanged fails the test if the log grew since last.
func unchanged(t *testing.T, c *Dir, last uint64, what string) {
	t.Helper()
	if got := c.Log.Last(); got != last {
		t.Errorf("%s changed the log: %d → %d", what, last, got)
	}
}

// oneLine fails the test unless err is an error of one line.
func oneLine(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("%s: %q, want a one-line error", what, err)
	}
}

// TestNodeRecordCarriesForward: the profile, the trackers and the follows
// each survive a change of the others; nil follows are private (no member),
// empty follows say the node follows nothing.
func TestNodeRecordCarriesForward(t *testing.T) {
	ctx := context.Background()
	c := openDir(t)
	p, err := c.SetProfile(ctx, Profile{"Workshop", "Jigs and fixtures.\nMostly wood.", "https://workshop.example/"})
	if err != nil || !p.New {
		t.Fatalf("SetProfile: %+v %v", p, err)
	}
	if again, err := c.SetProfile(ctx, Profile{"Workshop", "Jigs and fixtures.\nMostly wood.", "https://workshop.example/"}); err != nil || again.New || again.ID != p.ID {
		t.Fatalf("SetProfile again: %+v %v, want %s with New false", again, err, p.ID)
	}
	a, err := c.CreateTracker(ctx, topics.TrackerInfo{Name: "a"}, false)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := otherNode(t, 7)
	follows := &topics.Follows{Trackers: []topics.TrackerID{topics.DeriveTrackerID([]byte("someone"), "x")}, Nodes: []string{other}}
	if _, err := c.SetFollows(ctx, follows); err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateTracker(ctx, topics.TrackerInfo{Name: "b"}, false)
	if err != nil {
		t.Fatal(err)
	}
	n := nodeRecord(t, c).Payload.NodeInfo
	want := []topics.TrackerID{a.ID, b.ID}
	slices.SortFunc(want, func(x, y topics.TrackerID) int { return bytes.Compare(x[:], y[:]) })
	if n.Name != "Workshop" || n.Description != "Jigs and fixtures.\nMostly wood." || n.URL != "https://workshop.example/" {
		t.Errorf("profile after CreateTracker: %q %q %q", n.Name, n.Description, n.URL)
	}
	if !slices.Equal(n.Trackers, want) {
		t.Errorf("trackers %v, want %v", n.Trackers, want)
	}
	if n.Follows == nil || !slices.Equal(n.Follows.Nodes, follows.Nodes) || !slices.Equal(n.Follows.Trackers, follows.Trackers) {
		t.Errorf("follows after CreateTracker: %+v, want %+v", n.Follows, follows)
	}

	// A new profile keeps the trackers and follows.
	if _, err := c.SetProfile(ctx, Profile{"Shed", "", ""}); err != nil {
		t.Fatal(err)
	}
	if n := nodeRecord(t, c).Payload.NodeInfo; n.Name != "Shed" || n.URL != "" || !slices.Equal(n.Trackers, want) || n.Follows == nil {
		t.Errorf("after a new profile: %+v", n)
	}

	// Private, then following nothing: as the signed JSON says it.
	for _, tc := range []struct {
		name string
		f    *topics.Follows
		want string // in the payload, or "" for no follows member
	}{
		{"private", nil, ""},
		{"nothing", &topics.Follows{}, `"follows":{}`},
	} {
		ps, err := c.SetFollows(ctx, tc.f)
		if err != nil || !ps.New {
			t.Fatalf("%s: %+v %v", tc.name, ps, err)
		}
		rec := nodeRecord(t, c)
		js := string(rec.Env.Payload)
		switch {
		case tc.want == "" && (strings.Contains(js, `"follows"`) || rec.Payload.NodeInfo.Follows != nil):
			t.Errorf("%s: the record carries follows: %s", tc.name, js)
		case tc.want != "" && (!strings.Contains(js, tc.want) || rec.Payload.NodeInfo.Follows == nil):
			t.Errorf("%s: want %s in %s", tc.name, tc.want, js)
		}
		if rec.Payload.NodeInfo.Name != "Shed" || !slices.Equal(rec.Payload.NodeInfo.Trackers, want) {
			t.Errorf("%s: lost the profile or trackers: %+v", tc.name, rec.Payload.NodeInfo)
		}
	}

	// Refused by the record's limits: nothing recorded.
	last := c.Log.Last()
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"a name of two lines", func() error { _, err := c.SetProfile(ctx, Profile{"two\nlines", "", ""}); return err }},
		{"a long description", func() error {
			_, err := c.SetProfile(ctx, Profile{"x", strings.Repeat("d", topics.MaxNodeDescriptionLen+1), ""})
			return err
		}},
		{"a bad node followed", func() error {
			_, err := c.SetFollows(ctx, &topics.Follows{Nodes: []string{"not-a-node"}})
			return err
		}},
	} {
		oneLine(t, tc.do(), tc.name)
	}
	unchanged(t, c, last, "refused profiles and follows")
}

// TestTrust: trust records are checked before anything is recorded; the
// same record twice is one; level none withdraws.
func TestTrust(t *testing.T) {
	ctx := context.Background()
	c := openDir(t)
	subject, raw := otherNode(t, 7)
	stranger, strangerRaw := otherNode(t, 8)
	fp := topics.FingerprintOf(raw)

	last := c.Log.Last()
	for _, tc := range []struct {
		name        string
		subject     string
		level       topics.TrustLevel
		fingerprint string
		mismatch    bool
	}{
		{"malformed subject", "12D3KooWnope", topics.TrustTrusted, "", false},
		{"malformed subject with a fingerprint", "12D3KooWnope", topics.TrustVerified, fp, false},
		{"self", c.ID.ID, topics.TrustTrusted, "", false},
		{"verified without fingerprint", subject, topics.TrustVerified, "", false},
		{"verified, another's fingerprint", subject, topics.TrustVerified, topics.FingerprintOf(strangerRaw), true},
		{"trusted, another's fingerprint", subject, topics.TrustTrusted, topics.FingerprintOf(strangerRaw), true},
		{"verified, not a fingerprint", subject, topics.TrustVerified, "vyqw", true},
		{"unknown level", subject, "fond", "", false},
	} {
		_, err := c.Trust(ctx, tc.subject, tc.level, tc.fingerprint, "")
		oneLine(t, err, tc.name)
		if got := errors.Is(err, ErrFingerprintMismatch); got != tc.mismatch {
			t.Errorf("%s: %v: ErrFingerprintMismatch %v, want %v", tc.name, err, got, tc.mismatch)
		}
	}
	unchanged(t, c, last, "refused trust records")
	if _, err := c.Log.Record(c.ID.RawKey, "trust:"+subject); !errors.Is(err, feed.ErrNotFound) {
		t.Fatalf("a refused record stands: %v", err)
	}

	standing := func(want topics.Trust) {
		t.Helper()
		a, err := c.Log.Record(c.ID.RawKey, "trust:"+want.Subject)
		if err != nil {
			t.Fatal(err)
		}
		if got := *a.Payload.Trust; got.Subject != want.Subject || got.Level != want.Level || got.Fingerprint != want.Fingerprint || got.Note != want.Note {
			t.Fatalf("standing record %+v, want %+v", got, want)
		}
	}
	v, err := c.Trust(ctx, subject, topics.TrustVerified, fp, "compared at the meetup")
	if err != nil || !v.New {
		t.Fatalf("verified: %+v %v", v, err)
	}
	standing(topics.Trust{Subject: subject, Level: topics.TrustVerified, Fingerprint: fp, Note: "compared at the meetup"})
	if again, err := c.Trust(ctx, subject, topics.TrustVerified, fp, "compared at the meetup"); err != nil || again.New || again.ID != v.ID {
		t.Fatalf("verified again: %+v %v, want %s with New false", again, err, v.ID)
	}
	// A matching fingerprint with another level is checked, not recorded.
	if _, err := c.Trust(ctx, subject, topics.TrustMarginal, fp, ""); err != nil {
		t.Fatal(err)
	}
	standing(topics.Trust{Subject: subject, Level: topics.TrustMarginal})
	if _, err := c.Trust(ctx, stranger, topics.TrustDistrusted, "", "spams"); err != nil {
		t.Fatal(err)
	}
	none, err := c.Trust(ctx, subject, topics.TrustNone, "", "")
	if err != nil || !none.New {
		t.Fatalf("none: %+v %v", none, err)
	}
	standing(topics.Trust{Subject: subject, Level: topics.TrustNone})
	standing(topics.Trust{Subject: stranger, Level: topics.TrustDistrusted, Note: "spams"})
}

// TestFlag: a flag, the same flag again (nothing new), its withdrawal; a
// flag the record's rules refuse records nothing.
func TestFlag(t *testing.T) {
	ctx := context.Background()
	c := openDir(t)
	target := topics.FlagTarget{Tracker: topics.DeriveTrackerID([]byte("someone"), "x"), Thing: "t1"}
	key := "flag:" + target.Key()

	last := c.Log.Last()
	for _, tc := range []struct {
		name string
		f    topics.Flag
	}{
		{"no reason", topics.Flag{Target: target}},
		{"no target", topics.Flag{Reason: topics.FlagSpam}},
		{"a thing without its tracker", topics.Flag{Target: topics.FlagTarget{Thing: "t1"}, Reason: topics.FlagSpam}},
		{"an unknown reason", topics.Flag{Target: target, Reason: "ugly"}},
	} {
		_, err := c.Flag(ctx, tc.f)
		oneLine(t, err, tc.name)
	}
	unchanged(t, c, last, "refused flags")

	f, err := c.Flag(ctx, topics.Flag{Target: target, Reason: topics.FlagMalware, Note: "the STL hides a script"})
	if err != nil || !f.New {
		t.Fatalf("flag: %+v %v", f, err)
	}
	if again, err := c.Flag(ctx, topics.Flag{Target: target, Reason: topics.FlagMalware, Note: "the STL hides a script"}); err != nil || again.New || again.ID != f.ID {
		t.Fatalf("flag again: %+v %v, want %s with New false", again, err, f.ID)
	}
	w, err := c.Flag(ctx, topics.Flag{Target: target, Withdraw: true})
	if err != nil || !w.New {
		t.Fatalf("withdraw: %+v %v", w, err)
	}
	a, err := c.Log.Record(c.ID.RawKey, key)
	if err != nil || a.ID != w.ID || !a.Payload.Flag.Withdraw {
		t.Fatalf("standing flag after the withdrawal: %v %v", a, err)
	}
	// Flagging again after the withdrawal is new.
	if again, err := c.Flag(ctx, topics.Flag{Target: target, Reason: topics.FlagMalware, Note: "the STL hides a script"}); err != nil || !again.New {
		t.Fatalf("flag after the withdrawal: %+v %v", again, err)
	}
}
