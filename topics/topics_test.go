package topics

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/record"
)

// testKey returns a deterministic Ed25519 key.
func testKey(t testing.TB, seed byte) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rawPub(t testing.TB, k crypto.PrivKey) []byte {
	t.Helper()
	raw, err := RawPublicKey(k.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

var testNow = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func thingPayload(t testing.TB, k crypto.PrivKey, seq uint64) *Payload {
	t.Helper()
	p := &Payload{
		V: 1, Kind: KindThing, Tracker: DeriveTrackerID(rawPub(t, k), "designs"),
		Seq: seq, Time: FormatTime(testNow),
		Thing: &Thing{ID: "t1", Title: "Strandbeest", Version: "1", Tags: []string{"fun"},
			Ext: Extensions{"xThingMetadata": []byte(`{"note":"kept"}`)}},
	}
	if seq > 1 {
		p.Prev = IDOf([]byte("previous"))
	}
	return p
}

// sealRaw signs arbitrary payload bytes.
func sealRaw(t testing.TB, k crypto.PrivKey, typ []byte, payload string) []byte {
	t.Helper()
	b, err := Seal(k, typ, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTrackerID(t *testing.T) {
	pub := make([]byte, 32)
	for i := range pub {
		pub[i] = byte(i + 1)
	}
	for _, tc := range []struct{ name, want string }{
		{"example", "vyqwylxver5dpawbmrg3rrmxpq"}, // computed independently (Python hashlib/base64)
		{"", "vyqwylxver5dpawb642ha74mvm"},
	} {
		got := DeriveTrackerID(pub, tc.name)
		if got.String() != tc.want {
			t.Errorf("DeriveTrackerID(%q) = %s, want %s", tc.name, got, tc.want)
		}
		if !got.OwnedBy(pub) || got.OwnedBy(bytes.Repeat([]byte{9}, 32)) {
			t.Errorf("OwnedBy wrong for %s", got)
		}
		back, err := ParseTrackerID(tc.want)
		if err != nil || back != got {
			t.Errorf("ParseTrackerID(%q) = %v, %v", tc.want, back, err)
		}
		topic := TrackerTopic(got)
		if topic != "ttn/tracker/"+tc.want {
			t.Errorf("TrackerTopic = %q", topic)
		}
		if tt, err := ParseTrackerTopic(topic); err != nil || tt != got {
			t.Errorf("ParseTrackerTopic(%q) = %v, %v", topic, tt, err)
		}
	}
	for _, bad := range []string{"", "VYQWYLXVER5DPAWBMRG3RRMXPQ", "vyqwylxver5dpawbmrg3rrmxp", "vyqwylxver5dpawbmrg3rrmxpq=", "vyqwylxver5dpawbmrg3rrmxp1", "vyqwylxver5dpawbmrg3rrmxpr"} {
		if _, err := ParseTrackerID(bad); err == nil {
			t.Errorf("ParseTrackerID(%q) accepted", bad)
		}
	}
	if _, err := ParseTrackerTopic("ttn/discovery"); err == nil {
		t.Error("ParseTrackerTopic accepted the discovery topic")
	}
}

func TestFingerprintAndNodeID(t *testing.T) {
	pub := make([]byte, 32)
	for i := range pub {
		pub[i] = byte(i + 1)
	}
	k, err := crypto.UnmarshalEd25519PublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := Fingerprint(k)
	if err != nil {
		t.Fatal(err)
	}
	if want := "vyqw-ylxv-er5d-pawb-gxx2-e6nd-4q"; fp != want {
		t.Errorf("Fingerprint = %s, want %s", fp, want)
	}
	id, err := NodeID(k)
	if err != nil || !strings.HasPrefix(id, "12D3KooW") {
		t.Errorf("NodeID = %q, %v; want the 12D3KooW… form", id, err)
	}
}

func TestParseID(t *testing.T) {
	id := IDOf([]byte("x"))
	if back, err := ParseID(id.String()); err != nil || back != id {
		t.Fatalf("ParseID round trip: %v %v", back, err)
	}
	for _, bad := range []string{"", strings.ToUpper(id.String()), id.String()[1:], id.String() + "0", strings.Repeat("g", 64)} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	k := testKey(t, 1)
	other := testKey(t, 2)
	pub := rawPub(t, k)
	designs := DeriveTrackerID(pub, "designs")
	topic := TrackerTopic(designs)
	author, _ := NodeID(k.GetPublic())

	good := func(p *Payload) []byte {
		a, err := Sign(k, p)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		return a.Raw()
	}
	// unchecked signs p without validating it, to build invalid input.
	unchecked := func(p *Payload) []byte {
		p.Author = author
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return sealRaw(t, k, AnnouncementType, string(b))
	}
	// payload builds raw payload JSON for designs with the given body.
	payload := func(extra string) string {
		return fmt.Sprintf(`{"v":1,"kind":"thing","author":%q,"tracker":%q,"seq":1,"time":"2026-11-21T10:00:00Z"%s}`, author, designs, extra)
	}
	thing := `,"thing":{"id":"t1","title":"A","version":"1"}`

	otherKey, _, _ := crypto.GenerateSecp256k1Key(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	secpEnv, err := record.Seal(&rawRecord{typ: AnnouncementType, payload: []byte(payload(thing))}, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	secp, _ := secpEnv.Marshal()

	valid := good(thingPayload(t, k, 1))
	badSig := bytes.Clone(valid)
	badSig[len(badSig)-1] ^= 1
	unknownField := append(bytes.Clone(valid), protowireBytes(9, []byte("hi"))...)

	tests := []struct {
		name  string
		topic string
		data  []byte
		want  Outcome
		why   string // a fragment of the reason
	}{
		{"thing", topic, valid, Accept, ""},
		{"seq 2 with prev", topic, good(thingPayload(t, k, 2)), Accept, ""},
		{"no topic given", "", valid, Accept, ""},
		{"x metadata", topic, sealRaw(t, k, AnnouncementType, payload(`,"thing":{"id":"t1","title":"A","version":"1","authors":[{"name":"G","xIdentityMetadata":{"a":1}}],"xThingMetadata":[1,2]}`)), Accept, ""},
		{"tracker", TrackerTopic(designs), good(&Payload{V: 1, Kind: KindTracker, Tracker: designs, Seq: 1, Time: FormatTime(testNow), TrackerInfo: &TrackerInfo{Name: "designs"}}), Accept, ""},
		{"node", TrackerTopic(DeriveTrackerID(pub, "")), good(&Payload{V: 1, Kind: KindNode, Tracker: DeriveTrackerID(pub, ""), Seq: 1, Time: FormatTime(testNow), NodeInfo: &NodeInfo{Trackers: []TrackerID{designs}}}), Accept, ""},
		{"retract", topic, good(&Payload{V: 1, Kind: KindRetract, Tracker: designs, Seq: 3, Prev: IDOf(nil), Time: FormatTime(testNow), Retracts: IDOf(valid)}), Accept, ""},
		{"future version is opaque", topic, sealRaw(t, k, AnnouncementType, strings.Replace(payload(`,"thing":{"anything":true},"new":1`), `"v":1`, `"v":2`, 1)), Accept, ""},
		{"unknown kind is opaque", topic, sealRaw(t, k, AnnouncementType, strings.Replace(payload(`,"poll":{}`), `"thing"`, `"poll"`, 1)), Accept, ""},

		{"empty", topic, nil, Reject, "no public key"},
		{"garbage", topic, []byte("not an envelope"), Reject, "envelope"},
		{"oversize", topic, make([]byte, MaxEnvelopeSize+1), Reject, "limit"},
		{"bad signature", topic, badSig, Reject, "bad signature"},
		{"unknown protobuf field", topic, unknownField, Reject, "canonical"},
		{"re-framed", topic, reframe(t, valid), Reject, "canonical"},
		{"secp256k1 key", topic, secp, Reject, "not Ed25519"},
		{"discovery payload type", topic, sealRaw(t, k, DiscoveryType, payload(thing)), Reject, "payload type"},
		{"wrong topic", TrackerTopic(DeriveTrackerID(pub, "other")), valid, Reject, "arrived on topic"},
		{"discovery topic", DiscoveryTopic, valid, Reject, "arrived on topic"},
		{"author not signer: ignored without its key state (ValidateRotated)", topic, sealRaw(t, other, AnnouncementType, payload(thing)), Ignore, "not the signer"},
		{"author not a node id", topic, sealRaw(t, k, AnnouncementType, strings.Replace(payload(thing), author, "12D3KooWnotanode", 1)), Reject, "nor a node ID"},
		{"tracker not owned", topic, unchecked(&Payload{V: 1, Kind: KindThing, Tracker: DeriveTrackerID(rawPub(t, other), "designs"), Seq: 1, Time: FormatTime(testNow), Thing: &Thing{ID: "a", Title: "b", Version: "1"}}), Reject, "not owned"},
		{"tracker name mismatch", topic, unchecked(&Payload{V: 1, Kind: KindTracker, Tracker: designs, Seq: 1, Time: FormatTime(testNow), TrackerInfo: &TrackerInfo{Name: "else"}}), Reject, "not named"},
		{"node record off the node tracker", topic, unchecked(&Payload{V: 1, Kind: KindNode, Tracker: designs, Seq: 1, Time: FormatTime(testNow), NodeInfo: &NodeInfo{}}), Reject, "node tracker"},
		{"thing on the node tracker", "", unchecked(&Payload{V: 1, Kind: KindThing, Tracker: DeriveTrackerID(pub, ""), Seq: 1, Time: FormatTime(testNow), Thing: &Thing{ID: "a", Title: "b", Version: "1"}}), Reject, "records only"},
		{"future time", topic, sealRaw(t, k, AnnouncementType, strings.Replace(payload(thing), "2026-11-21T10:00:00Z", "2026-11-21T10:11:00Z", 1)), Ignore, "future"},
		{"old time is fine", topic, sealRaw(t, k, AnnouncementType, strings.Replace(payload(thing), "2026-11-21T10:00:00Z", "2001-01-01T00:00:00Z", 1)), Accept, ""},
		{"local time zone", topic, sealRaw(t, k, AnnouncementType, strings.Replace(payload(thing), "10:00:00Z", "10:00:00+01:00", 1)), Reject, "UTC"},
		{"seq 0", topic, sealRaw(t, k, AnnouncementType, strings.Replace(payload(thing), `"seq":1`, `"seq":0`, 1)), Reject, "seq 0"},
		{"seq 2^53", topic, sealRaw(t, k, AnnouncementType, strings.Replace(payload(thing), `"seq":1`, `"seq":9007199254740992`, 1)), Reject, "out of range"},
		{"seq fraction", topic, sealRaw(t, k, AnnouncementType, strings.Replace(payload(thing), `"seq":1`, `"seq":1.5`, 1)), Reject, "seq"},
		{"seq negative", topic, sealRaw(t, k, AnnouncementType, strings.Replace(payload(thing), `"seq":1`, `"seq":-1`, 1)), Reject, "seq"},
		{"seq as string", topic, sealRaw(t, k, AnnouncementType, strings.Replace(payload(thing), `"seq":1`, `"seq":"1"`, 1)), Reject, "seq"},
		{"prev missing", topic, sealRaw(t, k, AnnouncementType, strings.Replace(payload(thing), `"seq":1`, `"seq":2`, 1)), Reject, "prev is required"},
		{"prev at seq 1", topic, sealRaw(t, k, AnnouncementType, payload(`,"prev":"`+IDOf(nil).String()+`"`+thing)), Reject, "absent at seq 1"},
		{"duplicate key", topic, sealRaw(t, k, AnnouncementType, payload(`,"seq":1`+thing)), Reject, "duplicate"},
		{"mis-cased key", topic, sealRaw(t, k, AnnouncementType, payload(`,"Seq":1`+thing)), Reject, "Seq"},
		{"mis-cased body key", topic, sealRaw(t, k, AnnouncementType, payload(`,"thing":{"id":"t1","Title":"A","version":"1"}`)), Reject, "Title"},
		{"invalid utf-8", topic, sealRaw(t, k, AnnouncementType, payload(",\"thing\":{\"id\":\"t1\",\"title\":\"A\xff\",\"version\":\"1\"}")), Reject, "UTF-8"},
		{"unknown member", topic, sealRaw(t, k, AnnouncementType, payload(thing+`,"extra":1`)), Reject, "unknown member"},
		{"unknown thing member", topic, sealRaw(t, k, AnnouncementType, payload(`,"thing":{"id":"t1","title":"A","version":"1","colour":"red"}`)), Reject, "colour"},
		{"thing without id", topic, sealRaw(t, k, AnnouncementType, payload(`,"thing":{"title":"A","version":"1"}`)), Reject, "thing.id is required"},
		{"thing without title", topic, sealRaw(t, k, AnnouncementType, payload(`,"thing":{"id":"t1","version":"1"}`)), Reject, "thing.title is required"},
		{"body missing", topic, sealRaw(t, k, AnnouncementType, payload(``)), Reject, "needs"},
		{"wrong body", topic, sealRaw(t, k, AnnouncementType, payload(`,"retracts":"`+IDOf(nil).String()+`"`)), Reject, "needs"},
		{"trailing data", topic, sealRaw(t, k, AnnouncementType, payload(thing)+" {}"), Reject, "after"},
		{"too deep", topic, sealRaw(t, k, AnnouncementType, payload(`,"thing":{"id":"t1","title":"A","version":"1","xDeepMetadata":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}`)), Reject, "deeper"},
		{"title too long", topic, sealRaw(t, k, AnnouncementType, payload(`,"thing":{"id":"t1","title":"`+strings.Repeat("a", MaxTitleLen+1)+`","version":"1"}`)), Reject, "limit"},
		{"bad tracker id", topic, sealRaw(t, k, AnnouncementType, strings.Replace(payload(thing), designs.String(), "nope", 1)), Reject, "tracker id"},
		{"v 0", topic, sealRaw(t, k, AnnouncementType, strings.Replace(payload(thing), `"v":1`, `"v":0`, 1)), Reject, "v 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Validate(tc.topic, tc.data, testNow)
			if got := OutcomeOf(err); got != tc.want {
				t.Fatalf("outcome = %v (%v), want %v", got, err, tc.want)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tc.why) {
					t.Errorf("reason %q does not mention %q", err, tc.why)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("reason spans lines: %q", err)
				}
				return
			}
			if a.ID != IDOf(tc.data) || !bytes.Equal(a.Raw(), tc.data) {
				t.Errorf("announcement ID or bytes differ from the input")
			}
		})
	}
}

// TestLibp2pOpensOurEnvelopes checks that any libp2p implementation can
// open what we seal, and that our own verification agrees with libp2p's.
func TestLibp2pOpensOurEnvelopes(t *testing.T) {
	k := testKey(t, 3)
	a, err := Sign(k, thingPayload(t, k, 1))
	if err != nil {
		t.Fatal(err)
	}
	var rec rawRecord
	rec.typ = AnnouncementType
	env, err := record.ConsumeTypedEnvelope(a.Raw(), &rec)
	if err != nil {
		t.Fatalf("libp2p refuses our envelope: %v", err)
	}
	if !bytes.Equal(env.RawPayload, a.Env.Payload) || !bytes.Equal(rec.payload, a.Env.Payload) {
		t.Error("libp2p sees a different payload")
	}
	// A signature over another domain must fail our check.
	other := &rawRecordDomain{rawRecord{typ: AnnouncementType, payload: a.Env.Payload}, "libp2p-peer-record"}
	env2, err := record.Seal(other, k)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := env2.Marshal()
	if _, err := Validate("", b, testNow); OutcomeOf(err) != Reject {
		t.Errorf("an envelope signed for another domain was not rejected: %v", err)
	}
}

type rawRecordDomain struct {
	rawRecord
	domain string
}

func (r *rawRecordDomain) Domain() string { return r.domain }

// TestEveryByteMatters flips every byte of a valid envelope, one at a time,
// and expects validation to fail each time.
func TestEveryByteMatters(t *testing.T) {
	k := testKey(t, 4)
	a, err := Sign(k, thingPayload(t, k, 1))
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Raw() {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			b := bytes.Clone(a.Raw())
			b[i] ^= mask
			if _, err := Validate(a.Topic(), b, testNow); err == nil {
				t.Fatalf("flipping byte %d with %#x still validates", i, mask)
			}
		}
	}
	// Appending any unknown protobuf field fails too.
	for field := 4; field < 20; field++ {
		if field == 5 {
			continue
		}
		b := append(bytes.Clone(a.Raw()), protowireBytes(field, []byte{1})...)
		if _, err := Validate(a.Topic(), b, testNow); err == nil {
			t.Fatalf("appending protobuf field %d still validates", field)
		}
	}
}

func TestSignIsDeterministic(t *testing.T) {
	k := testKey(t, 5)
	a1, err := Sign(k, thingPayload(t, k, 1))
	if err != nil {
		t.Fatal(err)
	}
	a2, err := Sign(k, thingPayload(t, k, 1))
	if err != nil {
		t.Fatal(err)
	}
	if a1.ID != a2.ID {
		t.Error("signing the same payload twice gave two IDs")
	}
	if got := string(a1.Env.Payload); !strings.HasPrefix(got, `{"v":1,"kind":"thing","author":"12D3KooW`) {
		t.Errorf("payload does not start with the chain fields in order: %s", got)
	}
}

func TestRawKeyIsEd25519(t *testing.T) {
	k := testKey(t, 6)
	a, err := Sign(k, thingPayload(t, k, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Env.RawKey) != ed25519.PublicKeySize {
		t.Fatalf("raw key is %d bytes", len(a.Env.RawKey))
	}
	secp, _, _ := crypto.GenerateSecp256k1Key(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if _, err := Seal(secp, AnnouncementType, []byte("{}")); err == nil {
		t.Error("Seal accepted a secp256k1 key")
	}
}

// protowireBytes encodes one length-delimited protobuf field.
func protowireBytes(field int, v []byte) []byte {
	b := binary.AppendUvarint(nil, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// reframe re-encodes an envelope with its fields in reverse order: the same
// signed content under different bytes.
func reframe(t *testing.T, raw []byte) []byte {
	t.Helper()
	e, err := DecodeEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := e.PublicKey()
	key, _ := crypto.MarshalPublicKey(pub)
	var b []byte
	b = append(b, protowireBytes(5, e.signature)...)
	b = append(b, protowireBytes(3, e.Payload)...)
	b = append(b, protowireBytes(2, e.PayloadType)...)
	b = append(b, protowireBytes(1, key)...)
	return b
}

// TestExtensionNamesDifferInCase: two x*Metadata members whose names differ
// only in case are refused, however many members there are (the check
// costs one map lookup a member).
func TestExtensionNamesDifferInCase(t *testing.T) {
	ext := Extensions{}
	for i := range 3000 {
		ext[fmt.Sprintf("xA%dMetadata", i)] = jsontext.Value(`{}`)
	}
	th := Thing{ID: "a", Title: "A", Version: "1", Ext: ext}
	if err := th.Check(); err != nil {
		t.Fatalf("distinct names: %v", err)
	}
	ext["xAbcMetadata"], ext["xABCMetadata"] = jsontext.Value(`1`), jsontext.Value(`2`)
	if err := th.Check(); err == nil || !strings.Contains(err.Error(), "differ only in case") {
		t.Fatalf("names differing in case: %v", err)
	}
}

// TestDiscoveryTitleControl: a discovery record whose title holds a control
// character is invalid on every node (Reject), as a Thing's title is.
func TestDiscoveryTitleControl(t *testing.T) {
	k := testKey(t, 1)
	tracker := DeriveTrackerID(rawPub(t, k), "designs")
	for title, want := range map[string]bool{"Designs": true, "De\x1b[2Jsigns": false, "Line\nbreak": false} {
		b, err := SignDiscovery(k, &Discovery{Tracker: tracker, Title: title, Time: FormatTime(testNow)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = ValidateDiscovery(b, testNow)
		if ok := err == nil; ok != want {
			t.Errorf("title %q: valid %v, want %v (%v)", title, ok, want, err)
		}
		if err != nil && OutcomeOf(err) != Reject {
			t.Errorf("title %q: %v, want a Reject", title, err)
		}
	}
}
