package topics

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// recordFixture is a signer with its node tracker, another node to speak of,
// and one of the signer's trackers and announcements to flag.
type recordFixture struct {
	key         crypto.PrivKey
	author      string
	nodeTracker TrackerID
	designs     TrackerID
	other       string // another node's ID
	otherFP     string // its fingerprint
	ann         ID
}

func newRecordFixture(t testing.TB) *recordFixture {
	t.Helper()
	k, o := testKey(t, 1), testKey(t, 2)
	author, _ := NodeID(k.GetPublic())
	other, _ := NodeID(o.GetPublic())
	fp, err := Fingerprint(o.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	pub := rawPub(t, k)
	return &recordFixture{key: k, author: author, nodeTracker: DeriveTrackerID(pub, ""),
		designs: DeriveTrackerID(pub, "designs"), other: other, otherFP: fp, ann: IDOf([]byte("an announcement"))}
}

// payload is a record of kind on the node tracker, at seq 1.
func (f *recordFixture) payload(kind string) *Payload {
	return &Payload{V: 1, Kind: kind, Tracker: f.nodeTracker, Seq: 1, Time: FormatTime(testNow)}
}

// raw returns signed payload JSON of kind on tracker with the given body member.
func (f *recordFixture) raw(t testing.TB, kind string, tracker TrackerID, body string) []byte {
	t.Helper()
	return sealRaw(t, f.key, AnnouncementType, fmt.Sprintf(`{"v":1,"kind":%q,"author":%q,"tracker":%q,"seq":1,"time":"2026-11-21T10:00:00Z",%q:%s}`,
		kind, f.author, tracker, bodyField[kind], body))
}

// validRecords returns one valid payload of each shape the new records take.
func (f *recordFixture) validRecords() map[string]*Payload {
	with := func(kind string, set func(p *Payload)) *Payload {
		p := f.payload(kind)
		set(p)
		return p
	}
	return map[string]*Payload{
		"trust verified": with(KindTrust, func(p *Payload) {
			p.Trust = &Trust{Subject: f.other, Level: TrustVerified, Fingerprint: f.otherFP, Note: "compared at the meetup"}
		}),
		"trust trusted":    with(KindTrust, func(p *Payload) { p.Trust = &Trust{Subject: f.other, Level: TrustTrusted} }),
		"trust marginal":   with(KindTrust, func(p *Payload) { p.Trust = &Trust{Subject: f.other, Level: TrustMarginal} }),
		"trust distrusted": with(KindTrust, func(p *Payload) { p.Trust = &Trust{Subject: f.other, Level: TrustDistrusted, Note: "spams"} }),
		"trust none":       with(KindTrust, func(p *Payload) { p.Trust = &Trust{Subject: f.other, Level: TrustNone} }),
		"trust extension": with(KindTrust, func(p *Payload) {
			p.Trust = &Trust{Subject: f.other, Level: TrustTrusted, Ext: Extensions{"xTrustMetadata": []byte(`{"since":2024}`)}}
		}),
		"flag announcement": with(KindFlag, func(p *Payload) {
			p.Flag = &Flag{Target: FlagTarget{Announcement: f.ann}, Reason: FlagMalware, Note: "the STL hides a script"}
		}),
		"flag thing": with(KindFlag, func(p *Payload) {
			p.Flag = &Flag{Target: FlagTarget{Tracker: f.designs, Thing: "t1"}, Reason: FlagInfringement}
		}),
		"flag tracker": with(KindFlag, func(p *Payload) { p.Flag = &Flag{Target: FlagTarget{Tracker: f.designs}, Reason: FlagSpam} }),
		"flag node":    with(KindFlag, func(p *Payload) { p.Flag = &Flag{Target: FlagTarget{Node: f.other}, Reason: FlagObjectionable} }),
		"node with a commitment": with(KindNode, func(p *Payload) {
			p.NodeInfo = &NodeInfo{Trackers: []TrackerID{}, Next: Commitment([]byte("a recovery key of 32 bytes......"))}
		}),
		"flag withdrawn": with(KindFlag, func(p *Payload) {
			p.Flag = &Flag{Target: FlagTarget{Node: f.other}, Withdraw: true}
		}),
		"flag withdrawn with reason": with(KindFlag, func(p *Payload) {
			p.Flag = &Flag{Target: FlagTarget{Tracker: f.designs, Thing: "t1"}, Reason: FlagBroken, Withdraw: true}
		}),
		"node profile and follows": with(KindNode, func(p *Payload) {
			p.NodeInfo = &NodeInfo{Name: "Workshop", Description: "Jigs and fixtures.\nMostly wood.", URL: "https://workshop.example/",
				Trackers: []TrackerID{f.designs}, Follows: &Follows{Trackers: []TrackerID{f.designs}, Nodes: []string{f.other}}}
		}),
		"node follows nothing": with(KindNode, func(p *Payload) { p.NodeInfo = &NodeInfo{Trackers: []TrackerID{f.designs}, Follows: &Follows{}} }),
		"node private follows": with(KindNode, func(p *Payload) { p.NodeInfo = &NodeInfo{Name: "Quiet", Trackers: []TrackerID{}} }),
	}
}

// TestRecordsRoundTrip: every valid record signs, validates, parses back to
// the same payload and encodes to the same bytes.
func TestRecordsRoundTrip(t *testing.T) {
	f := newRecordFixture(t)
	for name, p := range f.validRecords() {
		t.Run(name, func(t *testing.T) {
			a, err := Sign(f.key, p)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			b, err := Validate(TrackerTopic(f.nodeTracker), a.Raw(), testNow)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !reflect.DeepEqual(b.Payload, p) {
				t.Errorf("parsed payload differs:\ngot  %+v\nwant %+v", b.Payload, p)
			}
			enc, err := b.Payload.Marshal()
			if err != nil || !bytes.Equal(enc, a.Env.Payload) {
				t.Errorf("re-encoding differs (%v):\n%s\n%s", err, enc, a.Env.Payload)
			}
			key, ok := b.Payload.RecordKey()
			if want := p.Kind != KindNode; ok != want || ok && key == "" {
				t.Errorf("RecordKey = %q, %v", key, ok)
			}
		})
	}
}

// TestRecordKeys: the key a later record replaces is the subject or the
// target, whatever else the record says, and differs between targets.
func TestRecordKeys(t *testing.T) {
	f := newRecordFixture(t)
	key := func(p *Payload) string {
		k, ok := p.RecordKey()
		if !ok {
			t.Fatalf("no record key for %+v", p)
		}
		return k
	}
	recs := f.validRecords()
	for _, pair := range [][2]string{
		{"trust verified", "trust none"},
		{"trust trusted", "trust distrusted"},
		{"flag node", "flag withdrawn"},
		{"flag thing", "flag withdrawn with reason"},
	} {
		if a, b := key(recs[pair[0]]), key(recs[pair[1]]); a != b {
			t.Errorf("%s and %s: keys %q and %q, want one", pair[0], pair[1], a, b)
		}
	}
	want := map[string]string{
		"trust none":        "trust:" + f.other,
		"flag announcement": "flag:announcement:" + f.ann.String(),
		"flag thing":        "flag:thing:" + f.designs.String() + "/t1",
		"flag tracker":      "flag:tracker:" + f.designs.String(),
		"flag node":         "flag:node:" + f.other,
	}
	for name, w := range want {
		if got := key(recs[name]); got != w {
			t.Errorf("%s: key %q, want %q", name, got, w)
		}
	}
	// A node flag and a trust record on the same node are different records.
	if key(recs["flag node"]) == key(recs["trust none"]) {
		t.Error("a flag and a trust record share a key")
	}
	if k, ok := thingPayload(t, f.key, 1).RecordKey(); ok {
		t.Errorf("a Thing has record key %q", k)
	}
	if k := (FlagTarget{Tracker: f.designs, Node: f.other}).Key(); k != "" {
		t.Errorf("a target of two shapes has key %q", k)
	}
}

// TestRecordsInvalid: each broken record is refused everywhere (Reject),
// with a one-line reason naming the field.
func TestRecordsInvalid(t *testing.T) {
	f := newRecordFixture(t)
	wrongFP, _ := Fingerprint(testKey(t, 3).GetPublic())
	cid := peer.ToCid(must(peer.Decode(f.other))).String()
	long := strings.Repeat("a", MaxNoteLen+1)
	nodes := make([]string, MaxNodeFollowedNodes+1)
	for i := range nodes {
		nodes[i] = `"` + f.other + `"`
	}
	trackers := func(n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = `"` + f.designs.String() + `"`
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	tests := []struct {
		name    string
		kind    string
		tracker TrackerID // zero: the node tracker
		body    string
		why     string // a fragment of the reason
	}{
		{"trust off the node tracker", KindTrust, f.designs, `{"subject":"` + f.other + `","level":"trusted"}`, "trust record on tracker"},
		{"flag off the node tracker", KindFlag, f.designs, `{"target":{"node":"` + f.other + `"},"reason":"spam"}`, "flag record on tracker"},

		{"trust without subject", KindTrust, TrackerID{}, `{"level":"trusted"}`, "trust.subject is required"},
		{"trust subject not a node id", KindTrust, TrackerID{}, `{"subject":"bob","level":"trusted"}`, "trust.subject: node id"},
		{"trust subject as a CID", KindTrust, TrackerID{}, `{"subject":"` + cid + `","level":"trusted"}`, "canonical"},
		{"trust subject is the author", KindTrust, TrackerID{}, `{"subject":"` + f.author + `","level":"trusted"}`, "trust.subject is the author"},
		{"trust without level", KindTrust, TrackerID{}, `{"subject":"` + f.other + `"}`, `trust.level ""`},
		{"trust unknown level", KindTrust, TrackerID{}, `{"subject":"` + f.other + `","level":"full"}`, `trust.level "full"`},
		{"trust level mis-cased", KindTrust, TrackerID{}, `{"subject":"` + f.other + `","level":"Trusted"}`, `trust.level "Trusted"`},
		{"verified without fingerprint", KindTrust, TrackerID{}, `{"subject":"` + f.other + `","level":"verified"}`, "trust.fingerprint is required"},
		{"verified with a wrong fingerprint", KindTrust, TrackerID{}, `{"subject":"` + f.other + `","level":"verified","fingerprint":"` + wrongFP + `"}`, "does not match the subject"},
		{"verified with a malformed fingerprint", KindTrust, TrackerID{}, `{"subject":"` + f.other + `","level":"verified","fingerprint":"` + strings.ToUpper(f.otherFP) + `"}`, "trust.fingerprint: fingerprint"},
		{"verified with an ungrouped fingerprint", KindTrust, TrackerID{}, `{"subject":"` + f.other + `","level":"verified","fingerprint":"` + strings.ReplaceAll(f.otherFP, "-", "") + `"}`, "trust.fingerprint"},
		{"fingerprint on another level", KindTrust, TrackerID{}, `{"subject":"` + f.other + `","level":"trusted","fingerprint":"` + f.otherFP + `"}`, "trust.fingerprint is only for level"},
		{"trust note too long", KindTrust, TrackerID{}, `{"subject":"` + f.other + `","level":"trusted","note":"` + long + `"}`, "trust.note is 513 bytes"},
		{"trust note on two lines", KindTrust, TrackerID{}, `{"subject":"` + f.other + `","level":"trusted","note":"a\nb"}`, "trust.note holds a control character"},
		{"trust unknown member", KindTrust, TrackerID{}, `{"subject":"` + f.other + `","level":"trusted","weight":3}`, `trust: unknown member "weight"`},
		{"trust mis-cased member", KindTrust, TrackerID{}, `{"Subject":"` + f.other + `","level":"trusted"}`, `"Subject"`},
		{"trust as a string", KindTrust, TrackerID{}, `"trusted"`, "trust"},

		{"flag without target", KindFlag, TrackerID{}, `{"reason":"spam"}`, "flag.target must be exactly one of"},
		{"flag empty target", KindFlag, TrackerID{}, `{"target":{},"reason":"spam"}`, "flag.target must be exactly one of"},
		{"flag null target", KindFlag, TrackerID{}, `{"target":null,"reason":"spam"}`, "flag.target must be exactly one of"},
		{"flag two targets", KindFlag, TrackerID{}, `{"target":{"announcement":"` + f.ann.String() + `","node":"` + f.other + `"},"reason":"spam"}`, "flag.target must be exactly one of"},
		{"flag thing without tracker", KindFlag, TrackerID{}, `{"target":{"thing":"t1"},"reason":"spam"}`, "flag.target must be exactly one of"},
		{"flag thing and node", KindFlag, TrackerID{}, `{"target":{"tracker":"` + f.designs.String() + `","thing":"t1","node":"` + f.other + `"},"reason":"spam"}`, "flag.target must be exactly one of"},
		{"flag empty thing", KindFlag, TrackerID{}, `{"target":{"tracker":"` + f.designs.String() + `","thing":""},"reason":"spam"}`, "/flag/target: thing: present but empty"},
		{"flag zero announcement", KindFlag, TrackerID{}, `{"target":{"announcement":"` + ID{}.String() + `"},"reason":"spam"}`, "announcement: the zero ID"},
		{"flag thing id too long", KindFlag, TrackerID{}, `{"target":{"tracker":"` + f.designs.String() + `","thing":"` + strings.Repeat("t", MaxIDLen+1) + `"},"reason":"spam"}`, "flag.target.thing is 257 bytes"},
		{"flag thing id with a control", KindFlag, TrackerID{}, `{"target":{"tracker":"` + f.designs.String() + `","thing":"t\u001b1"},"reason":"spam"}`, "flag.target.thing holds a control character"},
		{"flag bad announcement id", KindFlag, TrackerID{}, `{"target":{"announcement":"abc"},"reason":"spam"}`, "announcement id"},
		{"flag bad tracker id", KindFlag, TrackerID{}, `{"target":{"tracker":"DESIGNS"},"reason":"spam"}`, "tracker id"},
		{"flag bad node id", KindFlag, TrackerID{}, `{"target":{"node":"12D3KooWnope"},"reason":"spam"}`, "flag.target.node: node id"},
		{"flag unknown target member", KindFlag, TrackerID{}, `{"target":{"node":"` + f.other + `","peer":"x"},"reason":"spam"}`, "/flag/target/peer"},
		{"flag extension in target", KindFlag, TrackerID{}, `{"target":{"node":"` + f.other + `","xFlagMetadata":1},"reason":"spam"}`, "/flag/target/xFlagMetadata"},
		{"flag without reason", KindFlag, TrackerID{}, `{"target":{"node":"` + f.other + `"}}`, "flag.reason is required"},
		{"flag unknown reason", KindFlag, TrackerID{}, `{"target":{"node":"` + f.other + `"},"reason":"ugly"}`, `flag.reason "ugly"`},
		{"flag withdraw not a bool", KindFlag, TrackerID{}, `{"target":{"node":"` + f.other + `"},"reason":"spam","withdraw":"yes"}`, "withdraw"},
		{"flag note too long", KindFlag, TrackerID{}, `{"target":{"node":"` + f.other + `"},"reason":"spam","note":"` + long + `"}`, "flag.note is 513 bytes"},
		{"flag note with a control", KindFlag, TrackerID{}, `{"target":{"node":"` + f.other + `"},"reason":"spam","note":"a\u0085b"}`, "flag.note holds a control character"},
		{"flag unknown member", KindFlag, TrackerID{}, `{"target":{"node":"` + f.other + `"},"reason":"spam","severity":9}`, `flag: unknown member "severity"`},

		{"node description too long", KindNode, TrackerID{}, `{"trackers":[],"description":"` + strings.Repeat("d", MaxNodeDescriptionLen+1) + `"}`, "node_info.description is 1025 bytes"},
		{"node description with a control", KindNode, TrackerID{}, `{"trackers":[],"description":"a\u0007"}`, "node_info.description holds a control character"},
		{"node url on two lines", KindNode, TrackerID{}, `{"trackers":[],"url":"https://a/\nb"}`, "node_info.url holds a control character"},
		{"node url too long", KindNode, TrackerID{}, `{"trackers":[],"url":"` + strings.Repeat("u", MaxTextLen+1) + `"}`, "node_info.url is 4097 bytes"},
		{"node too many trackers", KindNode, TrackerID{}, `{"trackers":` + trackers(MaxNodeTrackers+1) + `}`, "node_info.trackers has 1001 entries"},
		{"node follows too many trackers", KindNode, TrackerID{}, `{"trackers":[],"follows":{"trackers":` + trackers(MaxNodeFollowedTrackers+1) + `}}`, "node_info.follows.trackers has 501 entries"},
		{"node follows too many nodes", KindNode, TrackerID{}, `{"trackers":[],"follows":{"nodes":[` + strings.Join(nodes, ",") + `]}}`, "node_info.follows.nodes has 101 entries"},
		{"node follows a bad node id", KindNode, TrackerID{}, `{"trackers":[],"follows":{"nodes":["` + f.other + `","Qmnope"]}}`, "node_info.follows.nodes[1]: node id"},
		{"node follows a CID", KindNode, TrackerID{}, `{"trackers":[],"follows":{"nodes":["` + cid + `"]}}`, "node_info.follows.nodes[0]: node id"},
		{"node follows a bad tracker id", KindNode, TrackerID{}, `{"trackers":[],"follows":{"trackers":["nope"]}}`, "/node_info/follows/trackers/0"},
		{"node follows unknown member", KindNode, TrackerID{}, `{"trackers":[],"follows":{"people":[]}}`, "/node_info/follows/people"},
		{"node follows as a list", KindNode, TrackerID{}, `{"trackers":[],"follows":[]}`, "/node_info/follows"},
		{"node unknown member", KindNode, TrackerID{}, `{"trackers":[],"avatar":"x"}`, `node_info: unknown member "avatar"`},
		{"node next too short", KindNode, TrackerID{}, `{"trackers":[],"next":"abc"}`, `node_info.next "abc": want the 64 lowercase hex digits`},
		{"node next in capitals", KindNode, TrackerID{}, `{"trackers":[],"next":"` + strings.Repeat("A", 64) + `"}`, "node_info.next"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tracker := tc.tracker
			if tracker.IsZero() {
				tracker = f.nodeTracker
			}
			_, err := Validate(TrackerTopic(tracker), f.raw(t, tc.kind, tracker, tc.body), testNow)
			if got := OutcomeOf(err); got != Reject {
				t.Fatalf("outcome = %v (%v), want reject", got, err)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("reason %q does not mention %q", err, tc.why)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("reason spans lines: %q", err)
			}
		})
	}
}

// TestNodeRecordWorstCase: a node record with every list and string at its
// limit, each string made of bytes JSON escapes, still signs and validates.
func TestNodeRecordWorstCase(t *testing.T) {
	f := newRecordFixture(t)
	n := &NodeInfo{
		Name:        strings.Repeat(`"`, MaxTitleLen),
		Description: strings.Repeat(`\`, MaxNodeDescriptionLen),
		URL:         strings.Repeat(`"`, MaxTextLen),
		Trackers:    make([]TrackerID, MaxNodeTrackers),
		Follows:     &Follows{Trackers: make([]TrackerID, MaxNodeFollowedTrackers), Nodes: make([]string, MaxNodeFollowedNodes)},
	}
	for i := range n.Trackers {
		n.Trackers[i] = DeriveTrackerID(rawPub(t, f.key), fmt.Sprint(i))
	}
	copy(n.Follows.Trackers, n.Trackers)
	for i := range n.Follows.Nodes {
		n.Follows.Nodes[i] = f.other
	}
	p := f.payload(KindNode)
	p.Seq, p.Prev, p.Time, p.NodeInfo = MaxSeq, IDOf(nil), "2026-11-21T10:00:00.123456789Z", n
	a, err := Sign(f.key, p)
	if err != nil {
		t.Fatalf("the largest node record does not sign: %v", err)
	}
	size := len(a.Raw())
	t.Logf("largest node record: %d bytes of %d", size, MaxEnvelopeSize)
	if size > MaxEnvelopeSize-4096 {
		t.Errorf("the largest node record is %d bytes, less than 4 KiB under the %d byte limit", size, MaxEnvelopeSize)
	}
}

func TestCheckFingerprint(t *testing.T) {
	good := "vyqw-ylxv-er5d-pawb-gxx2-e6nd-4q"
	if err := CheckFingerprint(good); err != nil {
		t.Fatalf("CheckFingerprint(%q): %v", good, err)
	}
	for _, bad := range []string{"", strings.ToUpper(good), strings.ReplaceAll(good, "-", ""), strings.ReplaceAll(good, "-", " "),
		good[:31] + "r", good[:31] + "1", good + "-", "vyqwy-lxv-er5d-pawb-gxx2-e6nd-4q", "vyqw-ylxv-er5d-pawb-gxx2-e6nd-4q\n"[1:] + "a"} {
		if err := CheckFingerprint(bad); err == nil {
			t.Errorf("CheckFingerprint(%q) accepted", bad)
		}
	}
}

func TestParseNodeID(t *testing.T) {
	f := newRecordFixture(t)
	raw, err := ParseNodeID(f.other)
	if err != nil || !bytes.Equal(raw, rawPub(t, testKey(t, 2))) {
		t.Fatalf("ParseNodeID(%q) = %x, %v", f.other, raw, err)
	}
	cid := peer.ToCid(must(peer.Decode(f.other))).String()
	if _, err := NodeKey(cid); err != nil {
		t.Fatalf("NodeKey no longer takes a CID: %v", err)
	}
	secp, _, _ := crypto.GenerateSecp256k1Key(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	secpID, _ := NodeID(secp.GetPublic())
	for _, bad := range []string{"", cid, "Qmnope", f.other[:len(f.other)-1], secpID} {
		if _, err := ParseNodeID(bad); err == nil {
			t.Errorf("ParseNodeID(%q) accepted", bad)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
