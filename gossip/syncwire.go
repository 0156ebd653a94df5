package gossip

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/go-json-experiment/json"
	"github.com/klauspost/compress/zstd"

	"github.com/thingtracker/ttn/topics"
)

// The sync protocol's wire format (docs/PROTOCOL.md has the whole of it).
// A stream carries one request and its response. Every message is a uvarint
// length, then that many bytes: a kind byte, then the body.
//
//	'J' JSON: a request, an inventory page, or the end of a response
//	'B' batch: one zstd frame holding envelopes, each uvarint-length-prefixed,
//	    in chain order
const (
	SyncProtocol = "/ttn/sync/1.0.0"

	maxSyncMessage  = 1 << 20   // bytes of one message, as sent
	maxBatchRaw     = 1 << 20   // bytes of one batch, decompressed
	maxBatchEntries = 1024      // envelopes in one batch
	targetBatchRaw  = 256 << 10 // a batch is sent when it reaches this size
	maxInventory    = 1000      // heads in one inventory page
	kindJSON        = 'J'
	kindBatch       = 'B'
)

// syncMsg is every JSON message of the protocol; Type says which fields
// count.
//
//	inventory: After, Limit, Trackers          (request)
//	heads:     Heads, Next                     (response page; Next "" = last)
//	fetch:     Tracker, Chains, All            (request)
//	plan:      Count                           (first of a fetch response)
//	done:      Error                           (end of a fetch response)
type syncMsg struct {
	Type     string             `json:"type"`
	After    string             `json:"after,omitempty"`
	Limit    int                `json:"limit,omitempty"`
	Trackers []topics.TrackerID `json:"trackers,omitempty"`
	Heads    []WireHead         `json:"heads,omitempty"`
	Next     string             `json:"next,omitempty"`
	Tracker  topics.TrackerID   `json:"tracker,omitzero"`
	Chains   []WireChain        `json:"chains,omitempty"`
	All      bool               `json:"all,omitempty"`
	Count    int                `json:"count,omitempty"`
	Error    string             `json:"error,omitempty"`
}

// WireHead is one chain's head in an inventory page.
type WireHead struct {
	Tracker topics.TrackerID `json:"tracker"`
	Author  string           `json:"author"` // node ID
	Seq     uint64           `json:"seq"`
	ID      topics.ID        `json:"id"`
}

// MaxWireGaps is how many missing ranges a fetch may name per chain (the
// log keeps at most 64 per chain by default): a responder refuses more.
const MaxWireGaps = 64

// WireChain is what a requester holds of one chain: its contiguous head
// (Seq, ID), the highest seq it holds (Max), and the ranges it misses
// between them, the first MaxWireGaps of them.
type WireChain struct {
	Author string      `json:"author"`
	Seq    uint64      `json:"seq"`
	ID     topics.ID   `json:"id,omitzero"`
	Max    uint64      `json:"max,omitempty"`
	Gaps   [][2]uint64 `json:"gaps,omitempty"`
}

// wants reports whether the requester misses seq: it is above everything it
// holds, or in one of its gaps.
func (c WireChain) wants(seq uint64) bool {
	return seq > max(c.Max, c.Seq) || inGaps(seq, c.Gaps)
}

// writeMsg writes one framed message.
func writeMsg(w *bufio.Writer, kind byte, body []byte) error {
	if 1+len(body) > maxSyncMessage {
		return fmt.Errorf("gossip: sync: message of %d bytes over the limit", 1+len(body))
	}
	var n [binary.MaxVarintLen64]byte
	w.Write(n[:binary.PutUvarint(n[:], uint64(1+len(body)))])
	w.WriteByte(kind)
	w.Write(body)
	return w.Flush()
}

func writeJSON(w *bufio.Writer, m *syncMsg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return writeMsg(w, kindJSON, b)
}

// readMsg reads one framed message, refusing oversize ones before reading
// them.
func readMsg(r *bufio.Reader) (byte, []byte, error) {
	n, err := readUvarint(r)
	if err != nil {
		return 0, nil, err
	}
	if n == 0 || n > maxSyncMessage {
		return 0, nil, fmt.Errorf("%w: length %d", ErrBadPeer, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, err
	}
	return b[0], b[1:], nil
}

// readUvarint reads a length prefix: a stream that ends or fails gives
// its error as it is (it breaks no rule), a prefix longer than a uint64
// wraps ErrBadPeer.
func readUvarint(r io.ByteReader) (uint64, error) {
	var x uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return x | uint64(b)<<(7*i), nil
		}
		x |= uint64(b&0x7f) << (7 * i)
	}
	return 0, fmt.Errorf("%w: a length prefix over 64 bits", ErrBadPeer)
}

// readJSON reads a message that must be JSON of type want (or "done").
func readJSON(r *bufio.Reader, want string) (*syncMsg, error) {
	kind, body, err := readMsg(r)
	if err != nil {
		return nil, err
	}
	if kind != kindJSON {
		return nil, fmt.Errorf("%w: kind %q, want JSON", ErrBadPeer, kind)
	}
	var m syncMsg
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPeer, err)
	}
	if m.Type != want && m.Type != "done" {
		return nil, fmt.Errorf("%w: type %q, want %q", ErrBadPeer, m.Type, want)
	}
	return &m, nil
}

// zstd coders, shared: EncodeAll and DecodeAll may be called concurrently,
// each holding one of the coder's inner encoders or decoders, so there is
// one per core (with fewer, the batcher's compressors take turns), up to 8
// (each keeps about 2 MiB). The decoder's memory and window are capped at
// one batch.
var (
	zEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(min(runtime.GOMAXPROCS(0), 8)),
		zstd.WithEncoderCRC(false), zstd.WithWindowSize(maxBatchRaw))
	zDec, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxBatchRaw), zstd.WithDecoderMaxWindow(maxBatchRaw),
		zstd.WithDecoderConcurrency(0))
)

// decodeBatch decompresses a batch body and splits it into envelopes,
// within the batch limits.
func decodeBatch(body []byte) ([][]byte, error) {
	raw, err := zDec.DecodeAll(body, make([]byte, 0, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("%w: batch: %v", ErrBadPeer, err)
	}
	if len(raw) > maxBatchRaw {
		return nil, fmt.Errorf("%w: batch of %d bytes", ErrBadPeer, len(raw))
	}
	var envs [][]byte
	for len(raw) > 0 {
		n, w := binary.Uvarint(raw)
		if w <= 0 || n > uint64(len(raw)-w) || n > topics.MaxEnvelopeSize {
			return nil, fmt.Errorf("%w: batch framing", ErrBadPeer)
		}
		envs = append(envs, raw[w:w+int(n)])
		raw = raw[w+int(n):]
		if len(envs) > maxBatchEntries {
			return nil, fmt.Errorf("%w: batch of more than %d envelopes", ErrBadPeer, maxBatchEntries)
		}
	}
	return envs, nil
}
