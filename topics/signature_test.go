package topics

import (
	"bytes"
	stded25519 "crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// The point (0, -1), of order 2.
const order2Point = "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"

// signShifted signs msg with seed, but with the nonce point R moved by the
// small-order point t: a signature that holds cofactored (ZIP-215) and not
// cofactorless (crypto/ed25519), because [S]B - [k]A = R - t.
func signShifted(t *testing.T, seed []byte, msg []byte, torsion string) (pub, sig []byte) {
	t.Helper()
	h := sha512.Sum512(seed)
	h[0] &= 248
	h[31] &= 63
	h[31] |= 64
	a, err := scalar.New().SetBits(h[:32])
	if err != nil {
		t.Fatal(err)
	}
	A := curve.NewEdwardsPoint().MulBasepoint(curve.ED25519_BASEPOINT_TABLE, a)
	pub = compress(A)

	rb := sha512.Sum512(append(h[32:], msg...))
	r, err := scalar.New().SetBytesModOrderWide(rb[:])
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := hex.DecodeString(torsion)
	ty, err := curve.NewCompressedEdwardsYFromBytes(tb)
	if err != nil {
		t.Fatal(err)
	}
	T, err := curve.NewEdwardsPoint().SetCompressedY(ty)
	if err != nil {
		t.Fatal(err)
	}
	R := curve.NewEdwardsPoint().MulBasepoint(curve.ED25519_BASEPOINT_TABLE, r)
	R.Add(R, T)
	rEnc := compress(R)

	d := sha512.New()
	d.Write(rEnc)
	d.Write(pub)
	d.Write(msg)
	k, err := scalar.New().SetBytesModOrderWide(d.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := scalar.New().Mul(k, a)
	s.Add(s, r)
	sig = append(rEnc, make([]byte, 32)...)
	if err := s.ToBytes(sig[32:]); err != nil {
		t.Fatal(err)
	}
	return pub, sig
}

func compress(p *curve.EdwardsPoint) []byte {
	b, _ := curve.NewCompressedEdwardsY().SetEdwardsPoint(p).MarshalBinary()
	return b
}

// verifyEnvelope builds a canonical envelope of payload with the given key
// and signature and runs Verify on it, three times: with the key as first
// seen, expanded at its second sighting, and expanded from the cache. All
// three must agree.
func verifyEnvelope(t *testing.T, pub, payload, sig []byte) error {
	t.Helper()
	raw, err := marshalEnvelope(pub, AnnouncementType, payload, sig)
	if err != nil {
		t.Fatal(err)
	}
	e, err := DecodeEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	first := e.Verify()
	for range 2 {
		if err := e.Verify(); fmt.Sprint(err) != fmt.Sprint(first) {
			t.Fatalf("Verify says %v, then %v with the key expanded", first, err)
		}
	}
	return first
}

// batchAgrees checks that a batch of n copies of one signature gives the
// single-signature answer, the property that lets any path batch.
func batchAgrees(t *testing.T, pub, msg, sig []byte, single bool) {
	t.Helper()
	v := ed25519.NewBatchVerifier()
	for range 4 {
		v.AddWithOptions(pub, msg, sig, verifyOptions)
	}
	all, each := v.Verify(nil)
	if all != single {
		t.Errorf("batch says %v, single says %v", all, single)
	}
	for i, ok := range each {
		if ok != single {
			t.Errorf("batch entry %d says %v, single says %v", i, ok, single)
		}
	}
}

// TestSignatureRule pins the network's one signature rule (verifyOptions):
// the cases where ZIP-215 and crypto/ed25519 differ, and the small-order
// key refused by both our rule and, for batches, the batch verifier.
func TestSignatureRule(t *testing.T) {
	payload := []byte(`{"v":1}`)
	msg := appendSigned(nil, AnnouncementType, payload)
	seed := []byte("0123456789abcdef0123456789abcdef")

	t.Run("honest signature", func(t *testing.T) {
		priv := stded25519.NewKeyFromSeed(seed)
		pub, sig := priv.Public().(stded25519.PublicKey), stded25519.Sign(priv, msg)
		if err := verifyEnvelope(t, pub, payload, sig); err != nil {
			t.Fatal(err)
		}
		batchAgrees(t, pub, msg, sig, true)
	})

	t.Run("torsion in R: cofactored accepts, crypto/ed25519 refuses", func(t *testing.T) {
		pub, sig := signShifted(t, seed, msg, order2Point)
		if stded25519.Verify(pub, msg, sig) {
			t.Fatal("crypto/ed25519 accepted a torsion-shifted R; the test built the wrong case")
		}
		if err := verifyEnvelope(t, pub, payload, sig); err != nil {
			t.Fatalf("ZIP-215 rule refused a cofactored-valid signature: %v", err)
		}
		batchAgrees(t, pub, msg, sig, true)
	})

	t.Run("small-order key: crypto/ed25519 accepts anything, we refuse", func(t *testing.T) {
		identity := append([]byte{1}, make([]byte, 31)...)
		sig := append(append([]byte{1}, make([]byte, 31)...), make([]byte, 32)...) // R = identity, S = 0
		if !stded25519.Verify(identity, msg, sig) {
			t.Fatal("crypto/ed25519 refused the identity key's forgery; the test built the wrong case")
		}
		err := verifyEnvelope(t, identity, payload, sig)
		if err == nil || !strings.Contains(err.Error(), "bad signature") {
			t.Fatalf("small-order key: err = %v, want bad signature", err)
		}
		batchAgrees(t, identity, msg, sig, false)
	})

	t.Run("S not reduced: both refuse", func(t *testing.T) {
		priv := stded25519.NewKeyFromSeed(seed)
		pub, sig := priv.Public().(stded25519.PublicKey), stded25519.Sign(priv, msg)
		// S + L, still under 2^256.
		l := [32]byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
		var carry uint16
		for i := range 32 {
			v := uint16(sig[32+i]) + uint16(l[i]) + carry
			sig[32+i], carry = byte(v), v>>8
		}
		if carry != 0 || stded25519.Verify(pub, msg, sig) {
			t.Fatal("S + L overflowed or verified; the test built the wrong case")
		}
		if err := verifyEnvelope(t, pub, payload, sig); err == nil {
			t.Fatal("a non-canonical S was accepted")
		}
		batchAgrees(t, pub, msg, sig, false)
	})
}

// TestValidateAllAgreesWithValidate: batching changes nothing about what is
// accepted or why, whatever the batch mixes (several keys, a key once, a
// bad signature, a torsion-shifted R, a small-order key, garbage).
func TestValidateAllAgreesWithValidate(t *testing.T) {
	var data [][]byte
	for i, seed := range []byte{1, 1, 1, 2, 1, 3, 3} {
		k := testKey(t, seed)
		a, err := Sign(k, thingPayload(t, k, uint64(i+1)))
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, a.Raw())
	}
	bad := bytes.Clone(data[1])
	bad[len(bad)-1] ^= 1 // the signature's last byte
	data = append(data, bad)

	payload := []byte(`{"v":1}`)
	pub, sig := signShifted(t, []byte("0123456789abcdef0123456789abcdef"), appendSigned(nil, AnnouncementType, payload), order2Point)
	shifted, err := marshalEnvelope(pub, AnnouncementType, payload, sig)
	if err != nil {
		t.Fatal(err)
	}
	identity := append([]byte{1}, make([]byte, 31)...)
	smallKey, err := marshalEnvelope(identity, AnnouncementType, payload, append(bytes.Clone(identity), make([]byte, 32)...))
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, shifted, smallKey, []byte("not an envelope"), data[0])
	// A key that is not a point, twice (its expansion fails).
	var offCurve []byte
	for y := byte(2); offCurve == nil; y++ {
		k := append([]byte{y}, make([]byte, 31)...)
		if _, err := ed25519.NewExpandedPublicKey(k); err != nil {
			offCurve = k
		}
	}
	notPoint, err := marshalEnvelope(offCurve, AnnouncementType, payload, sig)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, notPoint, notPoint)
	// Past 94 entries the batch equation is computed another way.
	k := testKey(t, 4)
	for seq := range uint64(100) {
		a, err := Sign(k, thingPayload(t, k, seq+1))
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, a.Raw())
	}

	for _, batch := range [][][]byte{data, data[:1], data[7:9], data[:14], nil} {
		anns, errs := ValidateAll("", batch, testNow)
		for i, d := range batch {
			want, wantErr := Validate("", d, testNow)
			if fmt.Sprint(errs[i]) != fmt.Sprint(wantErr) {
				t.Errorf("entry %d: ValidateAll says %v, Validate says %v", i, errs[i], wantErr)
			}
			if (want == nil) != (anns[i] == nil) || want != nil && want.ID != anns[i].ID {
				t.Errorf("entry %d: ValidateAll gave %v, Validate %v", i, anns[i], want)
			}
		}
	}
	// The batch above must really mix outcomes, or it proves little.
	_, errs := ValidateAll("", data, testNow)
	var sigErrs, ok int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case strings.Contains(err.Error(), "bad signature"):
			sigErrs++
		}
	}
	if ok != 108 || sigErrs != 4 {
		t.Fatalf("%d accepted and %d bad signatures, want 108 and 4: %v", ok, sigErrs, errs)
	}
}

// TestExpandedKeys: a key is expanded at its second sighting only, so a
// stream of fresh keys costs no expansion.
func TestExpandedKeys(t *testing.T) {
	pub := rawPub(t, testKey(t, 77))
	if expandedKey(pub) != nil {
		t.Fatal("a key seen once was expanded")
	}
	x := expandedKey(pub)
	if x == nil || expandedKey(pub) != x {
		t.Fatal("a key seen again was not expanded once and kept")
	}
	notPoint := make([]byte, 32)
	for y := byte(2); ; y++ {
		notPoint[0] = y
		if _, err := ed25519.NewExpandedPublicKey(notPoint); err != nil {
			break
		}
	}
	expandedKey(notPoint)
	if expandedKey(notPoint) != nil {
		t.Fatal("a key that is not a point was expanded")
	}
}
