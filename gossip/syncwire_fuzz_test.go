package gossip

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/topics"
)

// The decoders of bytes a peer sends over the sync protocol: the framing
// (readMsg), the JSON messages (requests a server reads, responses a
// requester reads), the batches, and a whole fetch response. Their seeds
// are real encodings: what ServeFetch writes for a real chain, and the
// requests a node sends.

// memHistory is an in-memory History of whole chains: what ServeFetch
// serves the seeds from, and where ReadFetch stores what it accepts.
type memHistory struct {
	mu     sync.Mutex
	heads  []Head
	chains map[string][]ChainEnvelope // by author node ID
	stored []*topics.Announcement
}

func (h *memHistory) Heads(after string, limit int, trackers []topics.TrackerID) ([]Head, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Head
	for _, hd := range h.heads {
		if len(trackers) == 0 || slices.Contains(trackers, hd.Tracker) {
			out = append(out, hd)
		}
	}
	return out, "", nil
}

func (h *memHistory) Chain(_ topics.TrackerID, author []byte, from uint64, limit int) ([]ChainEnvelope, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	pub, err := crypto.UnmarshalEd25519PublicKey(author)
	if err != nil {
		return nil, err
	}
	id, err := topics.NodeID(pub)
	if err != nil {
		return nil, err
	}
	var out []ChainEnvelope
	for _, e := range h.chains[id] {
		if e.Seq >= from && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (h *memHistory) AppendAll(_ context.Context, anns []*topics.Announcement) ([]topics.Outcome, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stored = append(h.stored, anns...)
	outs := make([]topics.Outcome, len(anns))
	for i := range outs {
		outs[i] = topics.Accept
	}
	return outs, nil
}

// fuzzChain is one author's chain of n Things on tracker "fuzz", varied in
// size, and the history holding it.
func fuzzChain(tb testing.TB, n int) (topics.TrackerID, *memHistory) {
	tb.Helper()
	key, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		tb.Fatal(err)
	}
	raw, _ := topics.RawPublicKey(key.GetPublic())
	owner, _ := topics.NodeID(key.GetPublic())
	tracker := topics.DeriveTrackerID(raw, "fuzz")
	h := &memHistory{chains: map[string][]ChainEnvelope{}}
	var prev topics.ID
	for seq := uint64(1); seq <= uint64(n); seq++ {
		a, err := topics.Sign(key, &topics.Payload{V: 1, Kind: topics.KindThing, Tracker: tracker, Seq: seq, Prev: prev,
			Time: topics.FormatTime(time.Date(2026, 1, 1, 0, 0, int(seq), 0, time.UTC)),
			Thing: &topics.Thing{ID: fmt.Sprint("thing-", seq), Title: fmt.Sprint("Thing number ", seq),
				Description: string(bytes.Repeat([]byte("lorem ipsum "), int(seq%7))), Version: "1"}})
		if err != nil {
			tb.Fatal(err)
		}
		h.chains[owner] = append(h.chains[owner], ChainEnvelope{Seq: seq, Envelope: a.Raw()})
		prev = a.ID
	}
	h.heads = []Head{{Tracker: tracker, Author: owner, AuthorKey: raw, Seq: uint64(n), ID: prev, Max: uint64(n)}}
	return tracker, h
}

// fetchRequest is what a requester holding seqs 1..2 and 5 of the chain
// asks for.
func fetchRequest(tracker topics.TrackerID, h *memHistory) FetchRequest {
	hd := h.heads[0]
	es := h.chains[hd.Author]
	return FetchRequest{Tracker: tracker, All: true, Chains: []WireChain{{Author: hd.Author, Seq: 2, ID: topics.IDOf(es[1].Envelope),
		Max: 5, Gaps: [][2]uint64{{3, 4}}}}}
}

// servedStream is a real fetch response: what ServeFetch writes for req.
func servedStream(tb testing.TB, h *memHistory, req FetchRequest) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if _, err := ServeFetch(context.Background(), &buf, h, req, nil); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// messages splits a stream into its framed messages.
func messages(tb testing.TB, stream []byte) (kinds []byte, bodies [][]byte) {
	tb.Helper()
	r := bufio.NewReader(bytes.NewReader(stream))
	for {
		kind, body, err := readMsg(r)
		if err == io.EOF {
			return kinds, bodies
		}
		if err != nil {
			tb.Fatal(err)
		}
		kinds, bodies = append(kinds, kind), append(bodies, body)
	}
}

// framed is one message as writeMsg frames it.
func framed(tb testing.TB, kind byte, body []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := writeMsg(w, kind, body); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func framedJSON(tb testing.TB, m *syncMsg) []byte {
	tb.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return framed(tb, kindJSON, b)
}

// allocated returns the bytes f allocates (the whole process's, so other
// goroutines' too: bounds checked against it are loose).
func allocated(f func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// FuzzSyncMessages: a stream of framed messages, as a server reads a
// request and a requester reads a response, never panics, allocates at
// most one message's limit beyond a small multiple of its size, and every
// message it decodes frames and decodes back to itself.
func FuzzSyncMessages(f *testing.F) {
	tracker, h := fuzzChain(f, 40)
	req := fetchRequest(tracker, h)
	f.Add(servedStream(f, h, req))
	f.Add(framedJSON(f, req.msg()))
	f.Add(framedJSON(f, &syncMsg{Type: "inventory", After: "x", Limit: 10, Trackers: []topics.TrackerID{tracker}}))
	hd := h.heads[0]
	f.Add(framedJSON(f, &syncMsg{Type: "heads", Heads: []WireHead{{Tracker: hd.Tracker, Author: hd.Author, Seq: hd.Seq, ID: hd.ID}}, Next: "n"}))
	f.Add(framedJSON(f, &syncMsg{Type: "done", Error: "budget"}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 'J'}) // a length over the limit
	f.Add([]byte{0x80, 0x80, 0x40, 'B'})             // the limit, and nothing after
	f.Fuzz(func(t *testing.T, stream []byte) {
		var kinds []byte
		var bodies [][]byte
		n := allocated(func() {
			r := bufio.NewReader(bytes.NewReader(stream))
			for {
				kind, body, err := readMsg(r)
				if err != nil {
					return
				}
				kinds, bodies = append(kinds, kind), append(bodies, body)
				if kind == kindJSON {
					var m syncMsg
					json.Unmarshal(body, &m)
				}
			}
		})
		if limit := uint64(maxSyncMessage + 64*len(stream) + 1<<20); n > limit {
			t.Fatalf("decoding %d bytes allocated %d bytes (limit %d)", len(stream), n, limit)
		}
		for i, body := range bodies {
			kind, back, err := readMsg(bufio.NewReader(bytes.NewReader(framed(t, kinds[i], body))))
			if err != nil || kind != kinds[i] || !bytes.Equal(back, body) {
				t.Fatalf("message %d does not frame back: %q %v", i, kind, err)
			}
			if kind != kindJSON {
				continue
			}
			var m syncMsg
			if json.Unmarshal(body, &m) != nil {
				continue
			}
			enc, err := json.Marshal(&m)
			if err != nil {
				t.Fatalf("a decoded message does not encode: %v", err)
			}
			var again syncMsg
			if err := json.Unmarshal(enc, &again); err != nil || !reflect.DeepEqual(normalized(m), normalized(again)) {
				t.Fatalf("message does not round trip (%v):\n%+v\n%+v", err, m, again)
			}
		}
	})
}

// normalized makes empty and nil slices alike: omitempty drops both.
func normalized(m syncMsg) syncMsg {
	if len(m.Trackers) == 0 {
		m.Trackers = nil
	}
	if len(m.Heads) == 0 {
		m.Heads = nil
	}
	if len(m.Chains) == 0 {
		m.Chains = nil
	}
	for i := range m.Chains {
		if len(m.Chains[i].Gaps) == 0 {
			m.Chains[i].Gaps = nil
		}
	}
	return m
}

// FuzzBatch: a batch body never panics its decoder, decodes within the
// batch limits in bounded memory, round trips through the batcher that
// encodes batches, and validates only into announcements of the tracker
// asked for, refusing everything else as the peer's fault.
func FuzzBatch(f *testing.F) {
	tracker, h := fuzzChain(f, 40)
	req := fetchRequest(tracker, h)
	kinds, bodies := messages(f, servedStream(f, h, req))
	for i, body := range bodies {
		if kinds[i] == kindBatch {
			f.Add(body)
		}
	}
	f.Add(zEnc.EncodeAll([]byte{0x05, 1, 2, 3, 4, 5}, nil))
	f.Add(zEnc.EncodeAll(make([]byte, maxBatchRaw+1), nil))     // over the decompressed limit
	f.Add(zEnc.EncodeAll(make([]byte, maxBatchEntries+1), nil)) // empty envelopes, one too many
	mine := map[string]WireChain{}
	for _, c := range req.Chains {
		mine[c.Author] = c
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var envs [][]byte
		var err error
		n := allocated(func() { envs, err = decodeBatch(body) })
		if limit := uint64(4*maxBatchRaw + 64*len(body) + 1<<20); n > limit {
			t.Fatalf("decoding %d bytes allocated %d bytes (limit %d)", len(body), n, limit)
		}
		anns, _, verr := validateBatch(body, req, mine)
		if err != nil {
			if !errors.Is(err, ErrBadPeer) || !errors.Is(verr, ErrBadPeer) {
				t.Fatalf("refused, but not as the peer's fault: %v; %v", err, verr)
			}
			return
		}
		if len(envs) > maxBatchEntries {
			t.Fatalf("%d envelopes in a batch", len(envs))
		}
		total := 0
		for _, e := range envs {
			if len(e) > topics.MaxEnvelopeSize {
				t.Fatalf("an envelope of %d bytes", len(e))
			}
			total += len(e)
		}
		if total > maxBatchRaw {
			t.Fatalf("a batch of %d bytes", total)
		}
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		b := newBatcher(w, nil)
		for _, e := range envs {
			if err := b.add(e); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.close(); err != nil {
			t.Fatal(err)
		}
		var back [][]byte
		for _, body := range messagesOf(t, buf.Bytes()) {
			part, err := decodeBatch(body)
			if err != nil {
				t.Fatalf("a re-encoded batch does not decode: %v", err)
			}
			back = append(back, part...)
		}
		if !slices.EqualFunc(envs, back, bytes.Equal) {
			t.Fatalf("the batch does not round trip: %d envelopes, %d back", len(envs), len(back))
		}
		if verr != nil {
			if !errors.Is(verr, ErrBadPeer) {
				t.Fatalf("refused, but not as the peer's fault: %v", verr)
			}
			return
		}
		for i, a := range anns {
			if a.Payload.Tracker != tracker || a.ID != topics.IDOf(envs[i]) {
				t.Fatalf("envelope %d accepted: tracker %s, ID %s", i, a.Payload.Tracker, a.ID)
			}
		}
	})
}

// messagesOf returns the bodies of a stream the batcher wrote.
func messagesOf(t *testing.T, stream []byte) [][]byte {
	_, bodies := messages(t, stream)
	return bodies
}

// FuzzReadFetch: a whole fetch response, whatever its bytes, never panics
// the requester, ends with an error that is the peer's fault, the
// responder's refusal or the stream's end, and stores only announcements
// of the tracker asked for and missed, as many as it says it received.
func FuzzReadFetch(f *testing.F) {
	tracker, h := fuzzChain(f, 40)
	req := fetchRequest(tracker, h)
	stream := servedStream(f, h, req)
	f.Add(stream)
	f.Add(stream[:len(stream)/2])
	f.Add(servedStream(f, h, FetchRequest{Tracker: tracker, All: true}))
	f.Add(framedJSON(f, &syncMsg{Type: "done", Error: "budget"}))
	f.Fuzz(func(t *testing.T, stream []byte) {
		into := &memHistory{}
		res, err := ReadFetch(context.Background(), bytes.NewReader(stream), into, req, nil)
		if err != nil && !errors.Is(err, ErrBadPeer) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
			!bytes.HasPrefix([]byte(err.Error()), []byte("gossip: fetch: ")) {
			t.Fatalf("an error that is not the peer's: %v", err)
		}
		if res.Received != len(into.stored) || res.Stored != len(into.stored) {
			t.Fatalf("result %+v, %d stored", res, len(into.stored))
		}
		held := req.Chains[0]
		for _, a := range into.stored {
			if a.Payload.Tracker != tracker {
				t.Fatalf("stored an announcement of tracker %s", a.Payload.Tracker)
			}
			if a.Payload.Author == held.Author && !held.wants(a.Payload.Seq) && (a.Payload.Seq != held.Seq || a.ID == held.ID) {
				t.Fatalf("stored seq %d, which the requester holds", a.Payload.Seq)
			}
		}
	})
}
