package topics

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	recordpb "github.com/libp2p/go-libp2p/core/record/pb"
	"google.golang.org/protobuf/proto"
)

// FuzzEnvelope: whatever Validate accepts re-encodes to identical bytes with
// a stable ID, and validates again the same way.
func FuzzEnvelope(f *testing.F) {
	k := testKey(f, 1)
	for seq := uint64(1); seq <= 3; seq++ {
		a, err := Sign(k, thingPayload(f, k, seq))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(a.Raw())
	}
	for _, p := range recordSeeds(f) {
		a, err := Sign(k, p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(a.Raw())
	}
	f.Add([]byte{})
	other := testKey(f, 2)
	h, err := Sign(other, thingPayload(f, other, 1))
	if err != nil {
		f.Fatal(err)
	}
	honest := h.Raw()
	f.Fuzz(func(t *testing.T, data []byte) {
		// The fast decoder accepts exactly what protobuf decoding followed
		// by go-libp2p's re-encoding gives back byte for byte.
		_, fastErr := DecodeEnvelope(data)
		if ok := protoCanonical(data); ok != (fastErr == nil) {
			t.Fatalf("fast decoder says %v, protobuf round trip says %v", fastErr, ok)
		}
		a, err := Validate("", data, time.Time{})
		// In a batch, beside an honest envelope of another key, it is
		// decided as Validate decides it, and the honest one still passes.
		anns, errs := ValidateAll("", [][]byte{honest, data, data}, time.Time{})
		if fmt.Sprint(errs[1]) != fmt.Sprint(err) || fmt.Sprint(errs[2]) != fmt.Sprint(err) || errs[0] != nil {
			t.Fatalf("ValidateAll says %v, Validate says %v", errs, err)
		}
		if err == nil && anns[1].ID != IDOf(data) {
			t.Fatalf("ValidateAll gave ID %s", anns[1].ID)
		}
		if err != nil {
			if OutcomeOf(err) == Accept {
				t.Fatalf("error with outcome accept: %v", err)
			}
			return
		}
		re, err := marshalEnvelope(a.Env.RawKey, a.Env.PayloadType, a.Env.Payload, a.Env.signature)
		if err != nil || !bytes.Equal(re, data) {
			t.Fatalf("accepted envelope re-encodes differently (%v)", err)
		}
		if a.ID != IDOf(re) {
			t.Fatal("ID is not stable")
		}
		b, err := Validate(a.Topic(), data, time.Time{})
		if err != nil || b.ID != a.ID || !reflect.DeepEqual(a.Payload, b.Payload) {
			t.Fatalf("second validation differs: %v", err)
		}
	})
}

// FuzzPayload: what ParsePayload accepts (with a known body) re-encodes, and
// the re-encoding parses to the same payload and encodes to the same bytes.
// Signed by a fixed key, the accepted payload validates with a stable ID.
func FuzzPayload(f *testing.F) {
	k := testKey(f, 1)
	for seq := uint64(1); seq <= 2; seq++ {
		b, err := thingPayload(f, k, seq).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, p := range recordSeeds(f) {
		p.Author, _ = NodeID(k.GetPublic())
		b, err := p.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":2,"kind":"x","author":"a","tracker":"aaaaaaaaaaaaaaaaaaaaaaaaaa","seq":1,"time":"2026-01-01T00:00:00Z","y":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePayload(data)
		if err != nil {
			return
		}
		if p.Opaque() {
			return
		}
		enc, err := p.Marshal()
		if err != nil {
			t.Fatalf("accepted payload does not encode: %v", err)
		}
		q, err := ParsePayload(enc)
		if err != nil {
			t.Fatalf("re-encoded payload refused: %v\n%s", err, enc)
		}
		enc2, err := q.Marshal()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
		raw, err := Seal(k, AnnouncementType, data)
		if err != nil {
			return // over the envelope limit
		}
		a, err := Validate("", raw, time.Time{})
		if err == nil && a.ID != IDOf(raw) {
			t.Fatal("ID is not stable")
		}
	})
}

// recordSeeds returns a valid node record, trust record and flag of every
// shape, signed by testKey(1), for the fuzz targets to start from.
func recordSeeds(f *testing.F) []*Payload {
	recs := newRecordFixture(f).validRecords()
	ps := make([]*Payload, 0, len(recs))
	for _, name := range slices.Sorted(maps.Keys(recs)) {
		ps = append(ps, recs[name])
	}
	return ps
}

// protoCanonical is the definition DecodeEnvelope implements: a protobuf
// envelope with an Ed25519 key, a 64-byte signature, a payload type and a
// payload, whose re-encoding is the input itself.
func protoCanonical(data []byte) bool {
	var m recordpb.Envelope
	if len(data) > MaxEnvelopeSize || proto.Unmarshal(data, &m) != nil || m.PublicKey == nil ||
		m.PublicKey.GetType() != cryptopb.KeyType_Ed25519 || len(m.PublicKey.GetData()) != 32 ||
		len(m.Signature) != 64 || len(m.PayloadType) == 0 || len(m.Payload) == 0 {
		return false
	}
	re, err := marshalEnvelope(m.PublicKey.GetData(), m.PayloadType, m.Payload, m.Signature)
	return err == nil && bytes.Equal(re, data)
}

// FuzzDiscovery: whatever bytes arrive on the discovery topic,
// ValidateDiscovery never panics, never errs with the outcome Accept, decides
// the same way twice, and what it accepts from the seeds' signer re-signs
// into a record that validates to the same fields.
func FuzzDiscovery(f *testing.F) {
	k := testKey(f, 1)
	tracker := DeriveTrackerID(rawPub(f, k), "designs")
	for _, d := range []*Discovery{
		{Tracker: tracker, Title: "Designs", HeadSeq: 3, HeadID: IDOf([]byte("head")), Time: FormatTime(testNow)},
		{Tracker: tracker, Time: FormatTime(testNow)},
	} {
		b, err := SignDiscovery(k, d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	a, err := Sign(k, thingPayload(f, k, 1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(a.Raw()) // an announcement, not a record
	odd, err := Seal(k, DiscoveryType, []byte(`{"v":2,"tracker":"`+tracker.String()+`","future":true}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(odd)
	signer, _ := NodeID(k.GetPublic())
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ValidateDiscovery(data, time.Time{})
		d2, err2 := ValidateDiscovery(data, time.Time{})
		if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(d, d2) {
			t.Fatalf("decided twice differently: %v, %v", err, err2)
		}
		if err != nil {
			if OutcomeOf(err) == Accept {
				t.Fatalf("error with outcome accept: %v", err)
			}
			return
		}
		if _, err := DecodeEnvelope(data); err != nil {
			t.Fatalf("accepted a record whose envelope does not decode: %v", err)
		}
		if d.Owner != signer {
			return // a key the test does not hold
		}
		again := *d
		b, err := SignDiscovery(k, &again)
		if err != nil {
			t.Fatalf("an accepted record does not sign: %v", err)
		}
		back, err := ValidateDiscovery(b, time.Time{})
		if err != nil || !reflect.DeepEqual(back, d) {
			t.Fatalf("re-signed record validates to %+v (%v), want %+v", back, err, d)
		}
	})
}
