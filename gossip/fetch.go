package gossip

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/thingtracker/ttn/topics"
)

// The fetch half of the sync protocol, independent of the transport: what
// the responder writes and what the requester reads, validates and stores.

// FetchRequest asks a peer for what the requester misses of one tracker.
type FetchRequest struct {
	Tracker topics.TrackerID
	// Chains are what the requester holds, one per author.
	Chains []WireChain
	// All asks for the chains of authors not listed too.
	All bool
	// Ignore, if set, names the authors left out, by raw Ed25519 key: each
	// side applies its own, as it is not sent. ServeFetch serves none of
	// their chains; ReadFetch drops their envelopes unverified and
	// unstored, and holds them against no one (see FetchResult.Skipped).
	// It is called for every chain served and every envelope read, on
	// several goroutines at once: it must be cheap. Nil leaves no one out.
	Ignore func(author [32]byte) bool
}

// ignores reports whether r leaves out the author of raw key key.
func (r FetchRequest) ignores(key []byte) bool {
	return r.Ignore != nil && len(key) == 32 && r.Ignore([32]byte(key))
}

// NewFetchRequest describes what h holds of tracker.
func NewFetchRequest(h History, tracker topics.TrackerID) (FetchRequest, error) {
	heads, _, err := h.Heads("", 1<<30, []topics.TrackerID{tracker})
	if err != nil {
		return FetchRequest{}, err
	}
	req := FetchRequest{Tracker: tracker, All: true}
	for _, hd := range heads {
		req.Chains = append(req.Chains, WireChain{Author: hd.Author, Seq: hd.Seq, ID: hd.ID, Max: hd.Max, Gaps: hd.Gaps[:min(len(hd.Gaps), MaxWireGaps)]})
	}
	return req, nil
}

func (r FetchRequest) msg() *syncMsg {
	return &syncMsg{Type: "fetch", Tracker: r.Tracker, Chains: r.Chains, All: r.All}
}

// ErrBudget is returned by ServeFetch when the requester's budget is spent.
var ErrBudget = errors.New("gossip: sync: the peer's byte budget is spent")

// ServeFetch writes the response to req from h: a plan (how many envelopes
// follow), then batches of envelopes in chain order, then the end. charge,
// if not nil, is asked before each batch is sent with its size in bytes; if
// it refuses, ServeFetch ends the response and returns ErrBudget.
func ServeFetch(ctx context.Context, w io.Writer, h History, req FetchRequest, charge func(int) bool) (sent int, err error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	heads, _, err := h.Heads("", 1<<30, []topics.TrackerID{req.Tracker})
	if err != nil {
		return 0, writeJSON(bw, &syncMsg{Type: "done", Error: "history unavailable"})
	}
	asked := make(map[string]WireChain, len(req.Chains))
	for _, c := range req.Chains {
		if len(c.Gaps) > MaxWireGaps {
			// Each served envelope is checked against the gaps: an honest
			// log never has this many.
			return 0, writeJSON(bw, &syncMsg{Type: "done", Error: fmt.Sprintf("over %d gaps in a chain", MaxWireGaps)})
		}
		asked[c.Author] = c
	}
	plan := 0
	var serve []Head
	for _, hd := range heads {
		have, ok := asked[hd.Author]
		if (!ok && !req.All) || req.ignores(hd.AuthorKey) {
			continue
		}
		serve = append(serve, hd)
		if hd.Max > max(have.Max, have.Seq) {
			plan += int(hd.Max - max(have.Max, have.Seq))
		}
		for _, g := range have.Gaps {
			plan += int(g[1] - g[0] + 1)
		}
	}
	if err := writeJSON(bw, &syncMsg{Type: "plan", Count: plan}); err != nil {
		return 0, err
	}
	b := newBatcher(bw, charge)
	for _, hd := range serve {
		if err = ctx.Err(); err != nil {
			break
		}
		if err = serveChain(h, b, hd, asked[hd.Author]); err != nil {
			break
		}
	}
	sent, berr := b.close()
	if err == nil {
		err = berr
	}
	if errors.Is(err, ErrBudget) {
		return sent, errors.Join(ErrBudget, writeJSON(bw, &syncMsg{Type: "done", Error: "budget"}))
	}
	if err != nil {
		return sent, err
	}
	return sent, writeJSON(bw, &syncMsg{Type: "done"})
}

// serveChain sends what the requester misses of one chain: everything
// above what it holds and in its gaps; or, when its head differs from ours,
// our envelope at that seq, as fork evidence.
func serveChain(h History, b *batcher, hd Head, have WireChain) error {
	if have.Seq > 0 {
		es, err := h.Chain(hd.Tracker, hd.AuthorKey, have.Seq, 1)
		if err != nil {
			return err
		}
		if len(es) == 1 && es[0].Seq == have.Seq && topics.IDOf(es[0].Envelope) != have.ID {
			return b.add(es[0].Envelope) // a fork: the requester decides
		}
	}
	from := max(have.Seq, have.Max) + 1
	if len(have.Gaps) > 0 {
		from = min(from, have.Gaps[0][0])
	}
	if sc, ok := h.(ChainScanner); ok {
		return scanChain(sc, b, hd, have, from)
	}
	const page = 512
	var lastSeq uint64
	var nextVariant byte
	for {
		es, err := h.Chain(hd.Tracker, hd.AuthorKey, from, page)
		if err != nil {
			return err
		}
		progress := false
		for _, e := range es {
			if e.Seq == lastSeq && e.Variant < nextVariant {
				continue // sent with the previous page
			}
			if have.wants(e.Seq) {
				if err := b.add(e.Envelope); err != nil {
					return err
				}
			}
			lastSeq, nextVariant, progress = e.Seq, e.Variant+1, true
		}
		if len(es) < page || !progress {
			return nil
		}
		from = lastSeq // a page may cut a fork's variants apart
	}
}

// ChainScanner is a History that can also walk a chain without copying it;
// serving uses it when it can.
type ChainScanner interface {
	// ScanChain calls fn for the envelopes of one chain with seq ≥ from, in
	// chain order, until fn returns false. The envelope is valid only
	// during the call.
	ScanChain(tracker topics.TrackerID, author []byte, from uint64, fn func(seq uint64, variant byte, envelope []byte) bool) error
}

// scanChain serves a chain from a ChainScanner, in pages, so that no
// iterator stays open while the network is slow.
func scanChain(sc ChainScanner, b *batcher, hd Head, have WireChain, from uint64) error {
	const page = 4096
	var lastSeq uint64
	var nextVariant byte
	for {
		n := 0
		var addErr error
		err := sc.ScanChain(hd.Tracker, hd.AuthorKey, from, func(seq uint64, variant byte, env []byte) bool {
			if seq == lastSeq && variant < nextVariant {
				return true // sent with the previous page
			}
			if have.wants(seq) {
				if addErr = b.add(env); addErr != nil {
					return false
				}
			}
			lastSeq, nextVariant = seq, variant+1
			n++
			return n < page
		})
		if err != nil || addErr != nil {
			return errors.Join(err, addErr)
		}
		if n < page {
			return nil
		}
		from = lastSeq // a page may cut a fork's variants apart
	}
}

func inGaps(seq uint64, gaps [][2]uint64) bool {
	for _, g := range gaps {
		if g[0] <= seq && seq <= g[1] {
			return true
		}
	}
	return false
}

// batcher gathers envelopes into batches, which are compressed on every
// core and sent in order by a goroutine of their own: reading the log and
// compressing overlap.
type batcher struct {
	raw     []byte // the batch being filled: uvarint length, envelope, …
	n       int    // envelopes in raw
	work    chan *batchJob
	ordered chan *batchJob
	wg      sync.WaitGroup
	done    chan struct{}

	mu   sync.Mutex
	err  error // the sender's first error
	sent int   // envelopes sent
}

type batchJob struct {
	raw, out []byte
	n        int
	ready    chan struct{}
}

func newBatcher(w *bufio.Writer, charge func(int) bool) *batcher {
	workers := min(runtime.GOMAXPROCS(0), 4)
	b := &batcher{raw: getBuf(), work: make(chan *batchJob, workers), ordered: make(chan *batchJob, 2*workers), done: make(chan struct{})}
	for range workers {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for j := range b.work {
				j.out = zEnc.EncodeAll(j.raw, getBuf())
				putBuf(j.raw)
				close(j.ready)
			}
		}()
	}
	go func() {
		defer close(b.done)
		for j := range b.ordered {
			<-j.ready
			if b.failed() != nil {
				continue
			}
			var err error
			if charge != nil && !charge(len(j.out)) {
				err = ErrBudget
			} else {
				err = writeMsg(w, kindBatch, j.out)
			}
			putBuf(j.out)
			b.mu.Lock()
			if err != nil && b.err == nil {
				b.err = err
			}
			if err == nil {
				b.sent += j.n
			}
			b.mu.Unlock()
		}
	}()
	return b
}

// batchBufs recycles batch buffers, raw and compressed: a serve goes
// through one per 256 KiB of envelopes, and allocating (and zeroing) each
// cost as much as reading the log.
var batchBufs sync.Pool

func getBuf() []byte {
	if b, ok := batchBufs.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, targetBatchRaw+topics.MaxEnvelopeSize)
}

func putBuf(b []byte) {
	if cap(b) <= 2*maxBatchRaw {
		batchBufs.Put(&b)
	}
}

func (b *batcher) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (b *batcher) add(env []byte) error {
	if len(b.raw)+len(env)+binary.MaxVarintLen32 > targetBatchRaw || b.n == maxBatchEntries {
		if err := b.flush(); err != nil {
			return err
		}
	}
	b.raw = binary.AppendUvarint(b.raw, uint64(len(env)))
	b.raw = append(b.raw, env...)
	b.n++
	return nil
}

// flush hands the batch being filled to the compressors and the sender.
func (b *batcher) flush() error {
	if err := b.failed(); err != nil {
		return err
	}
	if b.n == 0 {
		return nil
	}
	j := &batchJob{raw: b.raw, n: b.n, ready: make(chan struct{})}
	b.ordered <- j // blocks while the sender is behind
	b.work <- j
	b.raw, b.n = getBuf(), 0
	return nil
}

// close sends what is left and waits for the sender; it returns the
// envelopes sent and the first error.
func (b *batcher) close() (int, error) {
	err := b.flush()
	close(b.work)
	close(b.ordered)
	b.wg.Wait()
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		err = b.err
	}
	return b.sent, err
}

// ErrStore marks a fetch that failed on this side: what arrived could not
// be stored (a full disk, say). Another peer would fare no better.
var ErrStore = errors.New("gossip: sync: storing failed")

// ErrBadPeer marks a response that breaks the protocol: invalid or
// unrequested data. The peer that sent it should be dropped.
var ErrBadPeer = errors.New("gossip: sync: peer sent bad data")

// FetchResult says what a fetch brought.
type FetchResult struct {
	Planned          int // envelopes the responder said it would send
	Received, Stored int // envelopes received, and stored as new
	Forks            int // of them, fork evidence
	// Skipped counts the envelopes of authors the request ignores, dropped
	// unverified: not among Received.
	Skipped int
}

// ReadFetch reads the response to req from r, validates every envelope as a
// live one (but for the clock), checks it was asked for, and stores it in h.
// Batches are validated on every core while the previous one is stored.
// progress, if not nil, is called after each stored batch. What arrived
// before an error stays stored: asking again resumes from there. An error
// wrapping ErrBadPeer means the responder broke the protocol.
func ReadFetch(ctx context.Context, r io.Reader, h History, req FetchRequest, progress func(FetchResult)) (FetchResult, error) {
	var res FetchResult
	br := bufio.NewReaderSize(r, 64<<10)
	mine := make(map[string]WireChain, len(req.Chains))
	for _, c := range req.Chains {
		mine[c.Author] = c
	}
	// The plan comes first (or the end, when the responder refuses).
	first, err := readJSON(br, "plan")
	if err != nil {
		// A malformed plan wraps ErrBadPeer; a stream that ends or is
		// reset before one (the responder stopping, busy, or refusing a
		// relayed connection) breaks no rule.
		return res, err
	}
	if first.Type == "done" {
		return res, fmt.Errorf("gossip: fetch: %s", first.Error)
	}
	res.Planned = first.Count

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Stage 1 (this goroutine): read and decode. Stage 2: validate, in
	// parallel within a batch. Stage 3: append, in order.
	type batch struct {
		anns    []*topics.Announcement
		skipped int
		err     error
	}
	validated := make(chan batch, 2)
	var appendErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range validated {
			if b.err != nil || appendErr != nil {
				continue
			}
			res.Skipped += b.skipped
			if len(b.anns) == 0 {
				if progress != nil {
					progress(res)
				}
				continue
			}
			outs, err := h.AppendAll(ctx, b.anns)
			if err != nil {
				appendErr = err
				if ctx.Err() == nil { // not the fetch's time running out
					appendErr = fmt.Errorf("%w: %w", ErrStore, err)
				}
				cancel()
				continue
			}
			res.Received += len(b.anns)
			for i, o := range outs {
				if o == topics.Accept {
					res.Stored++
				} else if c, ok := mine[b.anns[i].Payload.Author]; ok && c.Seq == b.anns[i].Payload.Seq {
					res.Forks++
				}
			}
			if progress != nil {
				progress(res)
			}
		}
	}()
	finish := func(err error) (FetchResult, error) {
		close(validated)
		wg.Wait()
		if appendErr != nil {
			return res, appendErr
		}
		return res, err
	}
	for {
		kind, body, err := readMsg(br)
		if err != nil {
			return finish(err)
		}
		switch kind {
		case kindJSON:
			var m syncMsg
			if err := json.Unmarshal(body, &m); err != nil {
				return finish(fmt.Errorf("%w: %v", ErrBadPeer, err))
			}
			switch m.Type {
			case "done":
				if m.Error != "" {
					return finish(fmt.Errorf("gossip: fetch: %s", m.Error))
				}
				return finish(nil)
			}
			return finish(fmt.Errorf("%w: unexpected %q message", ErrBadPeer, m.Type))
		case kindBatch:
			anns, skipped, err := validateBatch(body, req, mine)
			if err != nil {
				return finish(err)
			}
			select {
			case validated <- batch{anns: anns, skipped: skipped}:
			case <-ctx.Done():
				return finish(ctx.Err())
			}
		default:
			return finish(fmt.Errorf("%w: message kind %q", ErrBadPeer, kind))
		}
	}
}

// validateBatch decodes a batch and validates its envelopes on every core,
// a part each, verifying each part's signatures in one batch: each valid as
// a live one (without the clock), of the tracker asked for, and something
// asked for: above what the requester holds, in one of its gaps, or at its
// head but different (fork evidence). The envelopes of authors the request
// ignores are left out first, unverified and unchecked, and counted in
// skipped.
func validateBatch(body []byte, req FetchRequest, mine map[string]WireChain) (_ []*topics.Announcement, skipped int, _ error) {
	tracker := req.Tracker
	envs, err := decodeBatch(body)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrBadPeer, err)
	}
	if req.Ignore != nil {
		kept := envs[:0]
		for _, env := range envs {
			// Decoding is cheap beside verifying; a bad envelope is kept
			// for validation to refuse.
			if e, err := topics.DecodeEnvelope(env); err == nil && req.ignores(e.RawKey) {
				skipped++
				continue
			}
			kept = append(kept, env)
		}
		envs = kept
	}
	anns := make([]*topics.Announcement, len(envs))
	errs := make([]error, len(envs))
	workers := min(runtime.GOMAXPROCS(0), len(envs))
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(envs)/workers, (w+1)*len(envs)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			part, perrs := topics.ValidateAll("", envs[lo:hi], time.Time{})
			for i, a := range part {
				if perrs[i] != nil {
					errs[lo+i] = fmt.Errorf("%w: invalid envelope: %v", ErrBadPeer, perrs[i])
					continue
				}
				anns[lo+i], errs[lo+i] = checkFetched(a, tracker, mine)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, 0, err
		}
	}
	return anns, skipped, nil
}

// checkFetched checks that a valid announcement was asked for.
func checkFetched(a *topics.Announcement, tracker topics.TrackerID, mine map[string]WireChain) (*topics.Announcement, error) {
	if a.Payload.Tracker != tracker {
		return nil, fmt.Errorf("%w: unrequested envelope of tracker %s", ErrBadPeer, a.Payload.Tracker)
	}
	if c, ok := mine[a.Payload.Author]; ok {
		seq := a.Payload.Seq
		if !c.wants(seq) && !(seq == c.Seq && a.ID != c.ID) {
			return nil, fmt.Errorf("%w: unrequested envelope at seq %d (requester holds up to %d)", ErrBadPeer, seq, max(c.Seq, c.Max))
		}
	}
	return a, nil
}
