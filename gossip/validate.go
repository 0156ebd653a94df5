package gossip

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/thingtracker/ttn/topics"
)

// result maps an outcome onto GossipSub's.
func result(o topics.Outcome) pubsub.ValidationResult {
	switch o {
	case topics.Accept:
		return pubsub.ValidationAccept
	case topics.Reject:
		return pubsub.ValidationReject
	}
	return pubsub.ValidationIgnore
}

// validate is the tracker topics' validator: every check of DESIGN.md's
// pipeline, cheapest first, and storing. It runs on pubsub's validation
// goroutines, many at once.
func (n *Node) validate(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	o := n.check(ctx, msg)
	n.stat.count(false, o)
	return result(o)
}

func (n *Node) check(ctx context.Context, msg *pubsub.Message) topics.Outcome {
	env, err := topics.DecodeAnnouncement(msg.Data) // size, decoding, canonical bytes, key and payload types
	if err != nil {
		n.debug(msg, err)
		return topics.OutcomeOf(err)
	}
	// An author the node ignores costs neither the store lookup nor the
	// signature; and the peer that relayed it did nothing wrong. Only the
	// node's own publishes pass: it chose to send them.
	author := [32]byte(env.RawKey)
	st := n.standing(author)
	if st.Ignore && msg.ReceivedFrom != n.host.ID() {
		n.stat.ignoredAuthors.Add(1)
		return topics.Ignore
	}
	id := topics.ID([]byte(msg.ID)) // the SHA-256 of the data: see messageID
	stored, err := n.cfg.Store.Has(id)
	if err != nil {
		n.cfg.Logger.Error("store lookup failed", "err", err)
		return topics.Ignore
	}
	if stored {
		if msg.ReceivedFrom == n.host.ID() {
			return topics.Accept // our own publish: appended first, forwarded now
		}
		n.stat.dupes.Add(1)
		return topics.Ignore
	}
	// An author over its budget costs no verification; but only a message
	// the author signed spends the budget, or anyone could silence it.
	now := n.cfg.Now()
	if n.budgets.spent(author, st, now) {
		n.stat.overBudget.Add(1)
		return topics.Ignore
	}
	if err := env.Verify(); err != nil {
		n.debug(msg, err)
		return topics.Reject
	}
	if !n.budgets.allow(author, st, now) {
		n.stat.overBudget.Add(1)
		return topics.Ignore
	}
	a, err := topics.Check(env, id, msg.GetTopic(), n.cfg.Now())
	if err != nil {
		n.debug(msg, err)
		return topics.OutcomeOf(err)
	}
	// A key signing for another author: that author's standing counts too
	// (anyone may claim an ignored author with a fresh key).
	if a.Rotated() && n.cfg.Standing != nil && n.cfg.Standing([32]byte(a.AuthorKey)).Ignore {
		n.stat.ignoredAuthors.Add(1)
		return topics.Ignore
	}
	o, err := n.cfg.Store.Append(ctx, a)
	if err != nil {
		n.cfg.Logger.Error("store append failed", "err", err, "topic", msg.GetTopic())
		return topics.Ignore
	}
	return o
}

// standing is an author's Standing with its zero budget filled in from
// AuthorRate and AuthorBurst.
func (n *Node) standing(author [32]byte) Standing {
	var s Standing
	if n.cfg.Standing != nil {
		s = n.cfg.Standing(author)
	}
	if s.Rate <= 0 {
		s.Rate = n.cfg.AuthorRate
	}
	if s.Burst <= 0 {
		s.Burst = n.cfg.AuthorBurst
	}
	return s
}

// ignoring returns whether Config.Standing ignores an author, or nil when
// there is no Standing: sync then skips nobody, at no cost.
func (n *Node) ignoring() func(author [32]byte) bool {
	if n.cfg.Standing == nil {
		return nil
	}
	return func(author [32]byte) bool { return n.cfg.Standing(author).Ignore }
}

func (n *Node) debug(msg *pubsub.Message, err error) {
	if !n.cfg.Logger.Enabled(context.Background(), slog.LevelDebug) {
		return // refused messages are counted; their details cost only when asked for
	}
	n.cfg.Logger.Debug("message refused", "topic", msg.GetTopic(), "peer", msg.ReceivedFrom.String(),
		"outcome", topics.OutcomeOf(err).String(), "reason", err.Error())
}

// joinDiscovery joins the discovery topic, which every node relays.
func (n *Node) joinDiscovery() error {
	if err := n.ps.RegisterTopicValidator(topics.DiscoveryTopic, n.validateDiscovery, pubsub.WithValidatorTimeout(validateTimeout)); err != nil {
		return err
	}
	t, err := n.ps.Join(topics.DiscoveryTopic)
	if err != nil {
		return err
	}
	if err := t.SetScoreParams(topicScoreParams(0.5, n.cfg.Heartbeat)); err != nil {
		return err
	}
	n.discTopic = t
	n.discRelay, err = t.Relay()
	return err
}

// Announce signs a discovery record for one of this node's trackers and
// publishes it on the discovery topic.
func (n *Node) Announce(ctx context.Context, d *topics.Discovery) error {
	b, err := topics.SignDiscovery(n.cfg.Key, d)
	if err != nil {
		return err
	}
	return n.discTopic.Publish(ctx, b)
}

// PublishDiscovery publishes a discovery record signed by its tracker's
// owner, which may be another node (a record this node holds and passes
// on, or a bridge's). An invalid record is refused with the reason and not
// sent.
func (n *Node) PublishDiscovery(ctx context.Context, signed []byte) error {
	if _, err := topics.ValidateDiscovery(signed, n.cfg.Now()); err != nil {
		return fmt.Errorf("gossip: discovery record: %w", err)
	}
	return n.discTopic.Publish(ctx, signed)
}

// DiscoveryPeers returns how many peers the node knows on the discovery
// topic.
func (n *Node) DiscoveryPeers() int { return len(n.ps.ListPeers(topics.DiscoveryTopic)) }

func (n *Node) validateDiscovery(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	o := n.checkDiscovery(msg)
	n.stat.count(true, o)
	return result(o)
}

func (n *Node) checkDiscovery(msg *pubsub.Message) topics.Outcome {
	if msg.ReceivedFrom == n.host.ID() {
		return topics.Accept
	}
	// The signer is the owner (ValidateDiscovery checks it): an ignored
	// owner's record costs no verification.
	if n.cfg.Standing != nil {
		if e, err := topics.DecodeEnvelope(msg.Data); err == nil && n.cfg.Standing([32]byte(e.RawKey)).Ignore {
			n.stat.ignoredAuthors.Add(1)
			return topics.Ignore
		}
	}
	d, err := topics.ValidateDiscovery(msg.Data, n.cfg.Now())
	if err != nil {
		n.debug(msg, err)
		return topics.OutcomeOf(err)
	}
	if err := n.discGate.admit(d, n.cfg.Now()); err != nil {
		n.debug(msg, err)
		return topics.Ignore
	}
	if n.cfg.OnDiscovery != nil {
		select {
		case n.discQ <- *d:
		default:
			n.stat.dropDisc.Add(1)
		}
	}
	return topics.Accept
}

// dispatchDiscoveries hands accepted records to OnDiscovery, one at a time.
func (n *Node) dispatchDiscoveries() {
	defer n.wg.Done()
	for {
		select {
		case d := <-n.discQ:
			n.cfg.OnDiscovery(d)
		case <-n.ctx.Done():
			return
		}
	}
}

// Discovery rate limits, per author and per tracker. An owner re-announces
// each tracker every few minutes and on change; these bounds are far above
// what an honest owner sends and keep a spammer with fresh keys from
// costing more than a fixed share of each node's time.
const (
	discoveryAuthorRate  = 20  // records per second per author, sustained
	discoveryAuthorBurst = 200 // records per author at once
	discoveryMinInterval = time.Second
	maxDiscoveryAuthors  = 10000 // authors remembered; the oldest are forgotten
	maxDiscoveryTrackers = 100000
)

// discoveryGate applies the discovery rate limits.
type discoveryGate struct {
	mu       sync.Mutex
	authors  map[string]*rate.Limiter
	trackers map[topics.TrackerID]trackerSeen
}

type trackerSeen struct {
	head uint64
	at   time.Time
}

func newDiscoveryGate() *discoveryGate {
	return &discoveryGate{authors: make(map[string]*rate.Limiter), trackers: make(map[topics.TrackerID]trackerSeen)}
}

// admit decides whether a valid record is worth relaying: its author is
// within budget, and it says something new about its tracker (a higher
// head) or the last word on it is a while old.
func (g *discoveryGate) admit(d *topics.Discovery, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	seen, ok := g.trackers[d.Tracker]
	if ok && d.HeadSeq <= seen.head && now.Sub(seen.at) < discoveryMinInterval {
		return fmt.Errorf("discovery: tracker %s announced %s ago", d.Tracker, now.Sub(seen.at).Round(time.Millisecond))
	}
	lim := g.authors[d.Owner]
	if lim == nil {
		if len(g.authors) >= maxDiscoveryAuthors {
			clear(g.authors)
		}
		lim = rate.NewLimiter(discoveryAuthorRate, discoveryAuthorBurst)
		g.authors[d.Owner] = lim
	}
	if !lim.AllowN(now, 1) {
		return fmt.Errorf("discovery: author %s over its budget", d.Owner)
	}
	if len(g.trackers) >= maxDiscoveryTrackers {
		clear(g.trackers)
	}
	g.trackers[d.Tracker] = trackerSeen{head: max(d.HeadSeq, seen.head), at: now}
	return nil
}

// authorBudgets keeps each author's announcement budget: a token bucket per
// signing key, at the rate and burst of the author's standing, checked
// before the signature so that a flood costs little.
type authorBudgets struct {
	mu   sync.Mutex
	keys map[[32]byte]*budget
}

// budget is one author's bucket and the standing it was last fitted to.
type budget struct {
	lim   *rate.Limiter
	rate  float64
	burst int
}

const maxBudgetAuthors = 100000 // authors remembered; beyond, all are forgotten

func newAuthorBudgets() *authorBudgets {
	return &authorBudgets{keys: make(map[[32]byte]*budget)}
}

// fit gives the bucket a standing's rate and burst when the standing has
// changed (the node raised or lowered the author), rather than keep a stale
// budget until the author is forgotten. The tokens earned until now stay
// (down to the new burst); from now on they accrue at the new rate. The
// caller holds the budgets' lock.
func (e *budget) fit(s Standing, now time.Time) {
	if s.Rate != e.rate {
		e.lim.SetLimitAt(now, rate.Limit(s.Rate))
		e.rate = s.Rate
	}
	if s.Burst != e.burst {
		e.lim.SetBurstAt(now, s.Burst)
		e.burst = s.Burst
	}
}

// spent reports whether an author, of standing s, has no budget left,
// without taking any (nor remembering an author it does not know). It fits
// a known author's bucket to s: a message not yet verified may do so, as s
// is this node's word, not the message's.
func (b *authorBudgets) spent(key [32]byte, s Standing, now time.Time) bool {
	b.mu.Lock()
	e := b.keys[key]
	if e != nil {
		e.fit(s, now)
	}
	b.mu.Unlock()
	return e != nil && e.lim.TokensAt(now) < 1
}

// allow takes one announcement from the budget of an author of standing s.
func (b *authorBudgets) allow(key [32]byte, s Standing, now time.Time) bool {
	b.mu.Lock()
	e := b.keys[key]
	if e == nil {
		if len(b.keys) >= maxBudgetAuthors {
			clear(b.keys)
		}
		e = &budget{lim: rate.NewLimiter(rate.Limit(s.Rate), s.Burst), rate: s.Rate, burst: s.Burst}
		b.keys[key] = e
	} else {
		e.fit(s, now)
	}
	b.mu.Unlock()
	return e.lim.AllowN(now, 1)
}
