package topics

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"
)

func BenchmarkValidate1KB(b *testing.B) {
	k := testKey(b, 1)
	p := thingPayload(b, k, 2)
	p.Thing.Description = strings.Repeat("d", 700)
	a, err := Sign(k, p)
	if err != nil {
		b.Fatal(err)
	}
	topic := a.Topic()
	b.SetBytes(int64(len(a.Raw())))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Validate(topic, a.Raw(), time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePayload1KB(b *testing.B) {
	k := testKey(b, 1)
	p := thingPayload(b, k, 2)
	p.Thing.Description = strings.Repeat("d", 700)
	a, err := Sign(k, p)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePayload(a.Env.Payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawVerify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 1024)
	sig := ed25519.Sign(priv, msg)
	for b.Loop() {
		ed25519.Verify(pub, msg, sig)
	}
}
