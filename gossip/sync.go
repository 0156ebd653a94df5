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
	"golang.org/x/time/rate"

	"github.com/thingtracker/ttn/topics"
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
	maxBanned         = 1024             // bans kept before expired ones are swept
)

// SyncStats counts the sync protocol's work.
type SyncStats struct {
	Fetches, FetchFailures uint64 // fetches this node made
	Received, Stored       uint64 // envelopes fetched, and stored as new
	Skipped                uint64 // envelopes fetched of authors the node ignores, dropped unverified
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
	sweepAt int // bans held when expired ones are next swept

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
	s.ban(p, time.Now())
	s.count(func(st *SyncStats) { st.Violations++ })
	s.n.cfg.Logger.Warn("peer sent bad sync data; dropped", "peer", p.String(), "err", why)
	s.n.host.Network().ClosePeer(p)
}

// ban bans p from now on. Bans of peers never heard from again are swept
// once there are many, or a stream of fresh keys would grow the map
// forever; the next sweep waits until the map has doubled.
func (s *syncer) ban(p peer.ID, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.banned) >= max(s.sweepAt, maxBanned) {
		for q, until := range s.banned {
			if now.After(until) {
				delete(s.banned, q)
			}
		}
		s.sweepAt = 2 * len(s.banned)
	}
	s.banned[p] = now.Add(banFor)
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
	if s.isBanned(p) || st.Conn().Stat().Limited { // never through a relay
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
	ignore := FetchRequest{Ignore: s.n.ignoring()}
	for _, h := range heads {
		if ignore.ignores(h.AuthorKey) {
			continue // not offered: it would not be served
		}
		page.Heads = append(page.Heads, WireHead{Tracker: h.Tracker, Author: h.Author, Seq: h.Seq, ID: h.ID})
	}
	return writeJSON(w, page)
}

// serveFetch answers a fetch request within the serving bounds: a slot
// among maxServes, and the requester's byte budget.
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
	lim := s.budget(p)
	bytes := 0
	charge := func(n int) bool {
		st.SetDeadline(time.Now().Add(syncIdle))
		bytes += n
		return lim.AllowN(time.Now(), n)
	}
	sent, err := ServeFetch(ctx, st, s.hist, FetchRequest{Tracker: req.Tracker, Chains: req.Chains, All: req.All, Ignore: s.n.ignoring()}, charge)
	s.count(func(st *SyncStats) { st.Served += uint64(sent); st.ServedBytes += uint64(bytes) })
	if errors.Is(err, ErrBudget) {
		s.count(func(st *SyncStats) { st.OverBudget++ })
		return nil
	}
	return err
}

// Inventory returns the heads the node with ID node holds, of trackers (all
// when empty).
func (n *Node) Inventory(ctx context.Context, node string, trackers []topics.TrackerID) ([]WireHead, error) {
	p, err := decodeNodeID(node)
	if err != nil {
		return nil, err
	}
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

// Fetch asks the node with ID node for what it holds of tracker beyond this
// node's chains, validates every envelope as a live one (but for the clock)
// and stores them (see ReadFetch). A peer that sends an invalid or
// unrequested envelope is dropped and penalised; what it sent before stays
// stored. An interrupted fetch keeps what arrived: the next one asks from
// there.
func (n *Node) Fetch(ctx context.Context, node string, tracker topics.TrackerID) (FetchResult, error) {
	p, err := decodeNodeID(node)
	if err != nil {
		return FetchResult{}, err
	}
	return n.fetch(ctx, p, tracker)
}

func (n *Node) fetch(ctx context.Context, p peer.ID, tracker topics.TrackerID) (FetchResult, error) {
	if n.sync == nil {
		return FetchResult{}, errors.New("gossip: no history to sync")
	}
	s := n.sync
	if s.isBanned(p) {
		return FetchResult{}, fmt.Errorf("gossip: peer %s is banned", p)
	}
	s.count(func(st *SyncStats) { st.Fetches++ })
	res, err := s.fetch(ctx, p, tracker)
	if errors.Is(err, ErrBadPeer) {
		s.penalize(p, err)
	}
	s.count(func(st *SyncStats) {
		st.Received += uint64(res.Received)
		st.Stored += uint64(res.Stored)
		st.Skipped += uint64(res.Skipped)
		if err != nil {
			st.FetchFailures++
		}
	})
	return res, err
}

func (s *syncer) fetch(ctx context.Context, p peer.ID, tracker topics.TrackerID) (FetchResult, error) {
	req, err := NewFetchRequest(s.hist, tracker)
	if err != nil {
		return FetchResult{}, err
	}
	req.Ignore = s.n.ignoring()
	ctx, cancel := context.WithTimeout(ctx, maxFetchTime)
	defer cancel()
	st, err := s.n.host.NewStream(ctx, p, SyncProtocol)
	if err != nil {
		return FetchResult{}, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	st.SetDeadline(time.Now().Add(syncIdle))
	if err := writeJSON(bufio.NewWriter(st), req.msg()); err != nil {
		return FetchResult{}, err
	}
	var progress func(FetchResult)
	if f := s.n.cfg.OnProgress; f != nil {
		progress = func(r FetchResult) {
			st.SetDeadline(time.Now().Add(syncIdle))
			f(tracker, r)
		}
	}
	res, err := ReadFetch(ctx, idleReader{st}, s.hist, req, progress)
	if err != nil {
		err = fmt.Errorf("gossip: fetch from %s: %w", p, err)
	}
	return res, err
}

// idleReader extends a stream's deadline at every read.
type idleReader struct{ st network.Stream }

func (r idleReader) Read(b []byte) (int, error) {
	r.st.SetDeadline(time.Now().Add(syncIdle))
	return r.st.Read(b)
}

// SyncTracker fetches a tracker's history from the peers on its topic, or
// else from any connected peer, until one on the topic answers in full or
// one off it sends something. It returns what arrived, over every peer
// tried.
func (n *Node) SyncTracker(ctx context.Context, t topics.TrackerID) (FetchResult, error) {
	var total FetchResult
	candidates := n.ps.ListPeers(topics.TrackerTopic(t))
	onTopic := slices.Clone(candidates)
	others := n.host.Network().Peers()
	rand.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	rand.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
	for _, p := range others {
		if !slices.Contains(candidates, p) {
			candidates = append(candidates, p)
		}
	}
	candidates = slices.DeleteFunc(candidates, func(p peer.ID) bool { return !n.direct(p) })
	var errs []error
	answered := false
	for _, p := range candidates {
		if ctx.Err() != nil {
			break
		}
		r, err := n.fetch(ctx, p, t)
		total.Received += r.Received
		total.Stored += r.Stored
		total.Forks += r.Forks
		total.Skipped += r.Skipped
		// A peer on the topic that answered holds what its tracker has; a
		// peer off it (subscriptions not yet known, or not following)
		// that had nothing to send may know nothing of it: ask the next.
		if err == nil && (r.Received > 0 || slices.Contains(onTopic, p)) {
			return total, nil
		}
		if err == nil {
			answered = true
			continue
		}
		errs = append(errs, err)
		if errors.Is(err, ErrStore) {
			break // no other peer would fare better
		}
	}
	if len(candidates) == 0 {
		return total, errors.New("gossip: no peer to sync from (sync needs a direct connection)")
	}
	if answered {
		return total, nil
	}
	return total, errors.Join(errs...)
}
