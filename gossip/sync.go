package gossip

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/thingtracker/ttn/topics"
	"golang.org/x/time/rate"
)

// History is what the sync protocol needs of the node's log. Its methods
// may be called concurrently and must not block on the network.
type History interface {
	// Heads returns the chains the node holds, ordered by tracker then
	// author, after the chain named by the page token after ("" for the
	// first), at most limit of them, only of trackers when it is not empty.
	// next is the token of the following page, "" after the last.
	Heads(after string, limit int, trackers []topics.TrackerID) (heads []Head, next string, err error)
	// Chain returns the envelopes of one chain with seq ≥ from, in chain
	// order (fork evidence after the entry it conflicts with), at most
	// limit of them.
	Chain(tracker topics.TrackerID, author []byte, from uint64, limit int) ([]ChainEnvelope, error)
	// AppendAll stores validated announcements, in order, durably.
	AppendAll(ctx context.Context, anns []*topics.Announcement) ([]topics.Outcome, error)
}

// Head is what a node holds of one chain.
type Head struct {
	Tracker   topics.TrackerID
	Author    string // node ID
	AuthorKey []byte // raw Ed25519 key
	Seq       uint64 // seqs 1..Seq are all held
	ID        topics.ID
	Max       uint64      // the highest seq held
	Gaps      [][2]uint64 // missing ranges between Seq and Max
}

// ChainEnvelope is one stored envelope of a chain.
type ChainEnvelope struct {
	Seq      uint64
	Variant  byte // 1 for the second envelope of a fork
	Envelope []byte
}

// Serving bounds: a node serves history to anyone who asks, within these.
const (
	maxServes         = 8                // fetches served at once
	serveRate         = 8 << 20          // bytes per second per peer, sustained
	serveBurst        = 64 << 20         // bytes per peer at once
	syncIdle          = 30 * time.Second // a stream idle this long is dropped
	maxFetchTime      = 10 * time.Minute // one fetch, whatever its size
	maxInventoryPages = 200              // inventory pages one request walks
	banFor            = 10 * time.Minute // a peer that sent bad data is not asked or served
	syncPenalty       = -1000            // added to the GossipSub score of such a peer
	maxServeBudget    = 4096             // peers whose budgets are remembered
)

// SyncStats counts the sync protocol's work.
type SyncStats struct {
	Fetches, FetchFailures uint64 // fetches this node made
	Received, Stored       uint64 // envelopes fetched, and stored as new
	Violations             uint64 // peers caught sending invalid or unrequested data
	Served, ServedBytes    uint64 // envelopes and bytes served
	Busy, OverBudget       uint64 // fetches refused: too many at once, or a peer's budget spent
}

type syncer struct {
	n      *Node
	hist   History
	serves chan struct{}

	mu      sync.Mutex
	budgets map[peer.ID]*rate.Limiter
	banned  map[peer.ID]time.Time

	stats struct {
		sync.Mutex
		SyncStats
	}
}

func newSyncer(n *Node, h History) *syncer {
	return &syncer{n: n, hist: h, serves: make(chan struct{}, maxServes),
		budgets: make(map[peer.ID]*rate.Limiter), banned: make(map[peer.ID]time.Time)}
}

func (s *syncer) count(f func(*SyncStats)) {
	s.stats.Lock()
	f(&s.stats.SyncStats)
	s.stats.Unlock()
}

// SyncStats returns the sync protocol's counters.
func (n *Node) SyncStats() SyncStats {
	if n.sync == nil {
		return SyncStats{}
	}
	n.sync.stats.Lock()
	defer n.sync.stats.Unlock()
	return n.sync.stats.SyncStats
}

// isBanned reports whether p misbehaved recently.
func (s *syncer) isBanned(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.banned[p]
	if ok && time.Now().After(until) {
		delete(s.banned, p)
		return false
	}
	return ok
}

// penalize bans p from sync, lowers its GossipSub score below the graylist
// and drops its connections.
func (s *syncer) penalize(p peer.ID, why error) {
	s.mu.Lock()
	s.banned[p] = time.Now().Add(banFor)
	s.mu.Unlock()
	s.count(func(st *SyncStats) { st.Violations++ })
	s.n.cfg.Logger.Warn("peer sent bad sync data; dropped", "peer", p.String(), "err", why)
	s.n.host.Network().ClosePeer(p)
}

// appScore is GossipSub's application-specific score: a penalty for peers
// caught misbehaving in sync.
func (s *syncer) appScore(p peer.ID) float64 {
	if s.isBanned(p) {
		return syncPenalty
	}
	return 0
}

func (s *syncer) budget(p peer.ID) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	lim := s.budgets[p]
	if lim == nil {
		if len(s.budgets) >= maxServeBudget {
			clear(s.budgets)
		}
		lim = rate.NewLimiter(serveRate, serveBurst)
		s.budgets[p] = lim
	}
	return lim
}

// serve answers one sync stream.
func (s *syncer) serve(st network.Stream) {
	defer st.Close()
	p := st.Conn().RemotePeer()
	if s.isBanned(p) {
		st.Reset()
		return
	}
	st.SetDeadline(time.Now().Add(syncIdle))
	r, w := bufio.NewReader(st), bufio.NewWriter(st)
	kind, body, err := readMsg(r)
	if err != nil || kind != kindJSON {
		st.Reset()
		return
	}
	var req syncMsg
	if err := json.Unmarshal(body, &req); err != nil {
		st.Reset()
		return
	}
	switch req.Type {
	case "inventory":
		err = s.serveInventory(w, &req)
	case "fetch":
		err = s.serveFetch(st, w, p, &req)
	default:
		err = writeJSON(w, &syncMsg{Type: "done", Error: fmt.Sprintf("unknown request %q", req.Type)})
	}
	if err != nil {
		s.n.cfg.Logger.Debug("sync serve ended", "peer", p.String(), "err", err)
		st.Reset()
	}
}

func (s *syncer) serveInventory(w *bufio.Writer, req *syncMsg) error {
	limit := req.Limit
	if limit <= 0 || limit > maxInventory {
		limit = maxInventory
	}
	heads, next, err := s.hist.Heads(req.After, limit, req.Trackers)
	if err != nil {
		return writeJSON(w, &syncMsg{Type: "done", Error: "history unavailable"})
	}
	page := &syncMsg{Type: "heads", Next: next}
	for _, h := range heads {
		page.Heads = append(page.Heads, WireHead{Tracker: h.Tracker, Author: h.Author, Seq: h.Seq, ID: h.ID})
	}
	return writeJSON(w, page)
}

// serveFetch streams what the requester misses of one tracker, in chain
// order, in batches.
func (s *syncer) serveFetch(st network.Stream, w *bufio.Writer, p peer.ID, req *syncMsg) error {
	select {
	case s.serves <- struct{}{}:
		defer func() { <-s.serves }()
	default:
		s.count(func(st *SyncStats) { st.Busy++ })
		return writeJSON(w, &syncMsg{Type: "done", Error: "busy"})
	}
	ctx, cancel := context.WithTimeout(s.n.ctx, maxFetchTime)
	defer cancel()
	heads, _, err := s.hist.Heads("", 1<<30, []topics.TrackerID{req.Tracker})
	if err != nil {
		return writeJSON(w, &syncMsg{Type: "done", Error: "history unavailable"})
	}
	asked := make(map[string]WireChain, len(req.Chains))
	for _, c := range req.Chains {
		asked[c.Author] = c
	}
	b := &batcher{w: w, st: st, lim: s.budget(p), ctx: ctx, s: s}
	for _, h := range heads {
		have, ok := asked[h.Author]
		if !ok && !req.All {
			continue
		}
		if err := s.serveChain(b, h, have); err != nil {
			if errors.Is(err, errBudget) {
				s.count(func(st *SyncStats) { st.OverBudget++ })
				return writeJSON(w, &syncMsg{Type: "done", Error: "budget"})
			}
			return err
		}
	}
	if err := b.flush(); err != nil {
		return err
	}
	return writeJSON(w, &syncMsg{Type: "done"})
}

// serveChain sends what the requester misses of one chain: everything
// above its head and in its gaps; or, when its head differs from ours,
// our envelope at that seq, as fork evidence.
func (s *syncer) serveChain(b *batcher, h Head, have WireChain) error {
	from := max(have.Seq, have.Max) + 1
	if len(have.Gaps) > 0 {
		from = min(from, have.Gaps[0][0])
	}
	if have.Seq > 0 {
		es, err := s.hist.Chain(h.Tracker, h.AuthorKey, have.Seq, 1)
		if err != nil {
			return err
		}
		if len(es) == 1 && es[0].Seq == have.Seq && topics.IDOf(es[0].Envelope) != have.ID {
			return b.add(es[0].Envelope) // a fork: the requester decides
		}
	}
	var sentSeq uint64
	var sentVariants byte
	for {
		es, err := s.hist.Chain(h.Tracker, h.AuthorKey, from, 256)
		if err != nil {
			return err
		}
		progress := false
		for _, e := range es {
			if e.Seq == sentSeq && e.Variant < sentVariants {
				continue // sent with the previous page
			}
			if have.wants(e.Seq) {
				if err := b.add(e.Envelope); err != nil {
					return err
				}
			}
			if e.Seq != sentSeq {
				sentSeq, sentVariants = e.Seq, 0
			}
			sentVariants = e.Variant + 1
			progress = true
		}
		if len(es) < 256 || !progress {
			return nil
		}
		from = sentSeq // the page may have cut a fork's variants apart
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

var errBudget = errors.New("gossip: sync: peer over its budget")

// batcher gathers envelopes into batches and sends them, charging the
// requester's byte budget.
type batcher struct {
	w    *bufio.Writer
	st   network.Stream
	lim  *rate.Limiter
	ctx  context.Context
	s    *syncer
	envs [][]byte
	size int
}

func (b *batcher) add(env []byte) error {
	if b.size+len(env) > targetBatchRaw || len(b.envs) == maxBatchEntries {
		if err := b.flush(); err != nil {
			return err
		}
	}
	b.envs = append(b.envs, env)
	b.size += len(env) + 3
	return nil
}

func (b *batcher) flush() error {
	if len(b.envs) == 0 {
		return nil
	}
	body := encodeBatch(b.envs)
	if !b.lim.AllowN(time.Now(), len(body)) {
		return errBudget
	}
	b.st.SetDeadline(time.Now().Add(syncIdle))
	if err := writeMsg(b.w, kindBatch, body); err != nil {
		return err
	}
	n, size := len(b.envs), len(body)
	b.s.count(func(st *SyncStats) { st.Served += uint64(n); st.ServedBytes += uint64(size) })
	b.envs, b.size = b.envs[:0], 0
	return nil
}

// Inventory returns the heads peer p holds, of trackers (all when empty).
func (n *Node) Inventory(ctx context.Context, p peer.ID, trackers []topics.TrackerID) ([]WireHead, error) {
	var out []WireHead
	after := ""
	for range maxInventoryPages {
		page, err := n.ask(ctx, p, &syncMsg{Type: "inventory", After: after, Limit: maxInventory, Trackers: trackers})
		if err != nil {
			return out, err
		}
		if page.Type == "done" {
			return out, fmt.Errorf("gossip: inventory from %s: %s", p, page.Error)
		}
		out = append(out, page.Heads...)
		if page.Next == "" {
			return out, nil
		}
		after = page.Next
	}
	return out, nil
}

// ask sends one inventory request and reads its page.
func (n *Node) ask(ctx context.Context, p peer.ID, req *syncMsg) (*syncMsg, error) {
	st, err := n.host.NewStream(ctx, p, SyncProtocol)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(syncIdle))
	if err := writeJSON(bufio.NewWriter(st), req); err != nil {
		return nil, err
	}
	return readJSON(bufio.NewReader(st), "heads")
}

// FetchResult says what a fetch brought.
type FetchResult struct {
	Received, Stored int // envelopes received, and stored as new
	Forks            int // of them, fork evidence
}

// Fetch asks peer p for what it holds of tracker beyond this node's chains,
// validates every envelope as a live one (but for the clock) and stores
// them. A peer that sends an invalid or unrequested envelope is dropped and
// penalised; what it sent before stays stored. An interrupted fetch keeps
// what arrived: the next one asks from there.
func (n *Node) Fetch(ctx context.Context, p peer.ID, tracker topics.TrackerID) (FetchResult, error) {
	if n.sync == nil {
		return FetchResult{}, errors.New("gossip: no history to sync")
	}
	s := n.sync
	if s.isBanned(p) {
		return FetchResult{}, fmt.Errorf("gossip: peer %s is banned", p)
	}
	s.count(func(st *SyncStats) { st.Fetches++ })
	res, err := s.fetch(ctx, p, tracker)
	if err != nil {
		s.count(func(st *SyncStats) { st.FetchFailures++ })
	}
	s.count(func(st *SyncStats) { st.Received += uint64(res.Received); st.Stored += uint64(res.Stored) })
	return res, err
}

func (s *syncer) fetch(ctx context.Context, p peer.ID, tracker topics.TrackerID) (FetchResult, error) {
	var res FetchResult
	heads, _, err := s.hist.Heads("", 1<<30, []topics.TrackerID{tracker})
	if err != nil {
		return res, err
	}
	req := &syncMsg{Type: "fetch", Tracker: tracker, All: true}
	mine := make(map[string]WireChain, len(heads))
	for _, h := range heads {
		c := WireChain{Author: h.Author, Seq: h.Seq, ID: h.ID, Max: h.Max, Gaps: h.Gaps}
		req.Chains = append(req.Chains, c)
		mine[h.Author] = c
	}
	ctx, cancel := context.WithTimeout(ctx, maxFetchTime)
	defer cancel()
	st, err := s.n.host.NewStream(ctx, p, SyncProtocol)
	if err != nil {
		return res, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	st.SetDeadline(time.Now().Add(syncIdle))
	r, w := bufio.NewReader(st), bufio.NewWriter(st)
	if err := writeJSON(w, req); err != nil {
		return res, err
	}
	for {
		kind, body, err := readMsg(r)
		if err != nil {
			return res, fmt.Errorf("gossip: fetch from %s: %w", p, err)
		}
		st.SetDeadline(time.Now().Add(syncIdle))
		switch kind {
		case kindJSON:
			var m syncMsg
			if err := json.Unmarshal(body, &m); err != nil || m.Type != "done" {
				s.penalize(p, fmt.Errorf("unexpected message in a fetch"))
				return res, errSyncMessage
			}
			if m.Error != "" {
				return res, fmt.Errorf("gossip: fetch from %s: %s", p, m.Error)
			}
			return res, nil
		case kindBatch:
			anns, err := s.check(body, tracker, mine)
			if err != nil {
				s.penalize(p, err)
				return res, err
			}
			res.Received += len(anns)
			outs, err := s.hist.AppendAll(ctx, anns)
			if err != nil {
				return res, err
			}
			for i, o := range outs {
				if o == topics.Accept {
					res.Stored++
				} else if mine[anns[i].Payload.Author].Seq == anns[i].Payload.Seq {
					res.Forks++
				}
			}
		default:
			s.penalize(p, fmt.Errorf("message kind %q", kind))
			return res, errSyncMessage
		}
	}
}

// check validates a fetched batch: every envelope valid as a live one
// (without the clock), of the tracker asked for, and something asked for:
// above the requester's head, in one of its gaps, or at its head (fork
// evidence).
func (s *syncer) check(body []byte, tracker topics.TrackerID, mine map[string]WireChain) ([]*topics.Announcement, error) {
	envs, err := decodeBatch(body)
	if err != nil {
		return nil, err
	}
	anns := make([]*topics.Announcement, 0, len(envs))
	for _, env := range envs {
		a, err := topics.Validate("", env, time.Time{})
		if err != nil {
			return nil, fmt.Errorf("invalid envelope: %w", err)
		}
		if a.Payload.Tracker != tracker {
			return nil, fmt.Errorf("unrequested envelope of tracker %s", a.Payload.Tracker)
		}
		if c, ok := mine[a.Payload.Author]; ok {
			seq := a.Payload.Seq
			asked := c.wants(seq) || (seq == c.Seq && a.ID != c.ID) // the last: fork evidence
			if !asked {
				return nil, fmt.Errorf("unrequested envelope at seq %d (head %d)", seq, c.Seq)
			}
		}
		anns = append(anns, a)
	}
	return anns, nil
}

// SyncTracker fetches a tracker's history from the peers on its topic, or
// else from any connected peer, until one answers in full. It returns what
// arrived, over every peer tried.
func (n *Node) SyncTracker(ctx context.Context, t topics.TrackerID) (FetchResult, error) {
	var total FetchResult
	candidates := n.ps.ListPeers(topics.TrackerTopic(t))
	others := n.host.Network().Peers()
	rand.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	rand.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
	for _, p := range others {
		if !slices.Contains(candidates, p) {
			candidates = append(candidates, p)
		}
	}
	var errs []error
	for _, p := range candidates {
		if ctx.Err() != nil {
			break
		}
		r, err := n.Fetch(ctx, p, t)
		total.Received += r.Received
		total.Stored += r.Stored
		total.Forks += r.Forks
		if err == nil {
			return total, nil
		}
		errs = append(errs, err)
	}
	if len(candidates) == 0 {
		return total, errors.New("gossip: no peer to sync from")
	}
	return total, errors.Join(errs...)
}
