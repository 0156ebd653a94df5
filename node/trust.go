package node

import (
	"context"
	"sync/atomic"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/trust"
	"github.com/thingtracker/ttn/view"
)

// Trust at work (DESIGN.md, "Trust"). The node keeps a datadir.Book of the
// trust and flag records it holds and applies each one stored. Authors are
// treated by their level: blocked and distrusted ones are ignored (gossip
// neither stores, forwards nor fetches their announcements); unknown ones
// get Budgets.Unknown, marginal and web ones Budgets.Web; the rest the
// network's and the log's defaults. The node follows the node trackers of
// the nodes whose records can count (its verified, trusted and marginal
// nodes and its web), so that their trust records and flags reach it.

// Budget is what the node gives one author at a trust level: GossipSub
// announcements per second and at once, and bytes stored in the log.
type Budget struct {
	Rate  float64
	Burst int
	Quota int64
}

// Budgets are the budgets of authors below trusted. Authors this node
// trusts or verified, and itself, get the network's defaults
// (gossip.Config.AuthorRate, AuthorBurst; feed.Config.AuthorQuota).
type Budgets struct {
	Unknown Budget // unknown authors
	Web     Budget // marginal and web authors
}

// DefaultBudgets are the budgets by level a node starts with: a fresh key
// gets a tenth of a trusted author's rate and a sixteenth of its storage.
func DefaultBudgets() Budgets {
	return Budgets{
		Unknown: Budget{Rate: 10, Burst: 200, Quota: 64 << 20},
		Web:     Budget{Rate: 50, Burst: 1000, Quota: 256 << 20},
	}
}

// budget returns the budget of an author at level l: zero (the
// defaults) for self and the nodes it trusts or verified.
func (b Budgets) budget(l trust.Level) Budget {
	switch l {
	case trust.Unknown:
		return b.Unknown
	case trust.Marginal, trust.Web:
		return b.Web
	}
	return Budget{}
}

// ignored reports whether the announcements of a node at level l are
// ignored.
func ignored(l trust.Level) bool { return l == trust.Blocked || l == trust.Distrusted }

// standing is gossip's view of the author a signing key signs for: its
// own, or, for a key an author rotated to, that author's.
func (n *Node) standing(k [32]byte) gossip.Standing {
	l := n.book.KeyLevel([32]byte(n.Log.AuthorKey(k[:])))
	if ignored(l) {
		return gossip.Standing{Ignore: true}
	}
	b := n.cfg.Budgets.budget(l)
	return gossip.Standing{Rate: b.Rate, Burst: b.Burst}
}

// quotaByLevel gives the log each author's storage quota by its level. The log
// is open before the book: until the book is, every author gets the
// default.
type quotaByLevel struct {
	budgets Budgets
	book    atomic.Pointer[datadir.Book]
}

// of is feed.Config.AuthorQuotaOf (zero: the default).
func (q *quotaByLevel) of(k [32]byte) int64 {
	b := q.book.Load()
	if b == nil {
		return 0
	}
	l := b.KeyLevel(k)
	if ignored(l) {
		l = trust.Unknown
	}
	return q.budgets.budget(l).Quota
}

// counting reports whether the records and flags of a node at level l
// count, so that the node follows its node tracker.
func counting(l trust.Level) bool {
	switch l {
	case trust.Verified, trust.Trusted, trust.Marginal, trust.Web:
		return true
	}
	return false
}

// applyRecord takes a stored trust or flag record into the book, and
// follows or lets go the node trackers of the nodes whose level moved.
func (n *Node) applyRecord(cursor uint64) {
	a, err := n.Log.Announcement(cursor)
	if err != nil {
		n.cfg.Logger.Warn("reading a trust record", "cursor", cursor, "err", err)
		return
	}
	n.relevel(n.book.Apply(a))
}

// relevel follows the node trackers of nodes that came to count, and
// leaves those of nodes that no longer do (unless followed otherwise).
func (n *Node) relevel(ids []string) {
	for _, id := range ids {
		raw, err := topics.NodeKey(id)
		if err != nil || id == n.ID.ID {
			continue
		}
		nt := topics.DeriveTrackerID(raw, "")
		l := n.book.Level(id).Level
		n.promisc.relevel(id, l == trust.Unknown)
		n.mu.Lock()
		_, had := n.viaTrust[nt]
		want := counting(l)
		if want {
			n.viaTrust[nt] = id
		} else {
			delete(n.viaTrust, nt)
		}
		n.mu.Unlock()
		switch {
		case want && !had:
			if err := n.join(nt); err != nil {
				n.cfg.Logger.Warn("not following a trusted node's records", "node", id, "err", err)
			}
			n.findNode(id)
		case !want && had && !n.Followed(nt):
			n.net.Unfollow(nt)
		}
	}
}

// followTrusted follows the node trackers of every node whose records
// count, at start.
func (n *Node) followTrusted() {
	n.relevel(n.book.Trusted(trust.Verified, trust.Trusted, trust.Marginal, trust.Web))
}

// Trust records what this node thinks of another node (control channel).
func (n *Node) Trust(ctx context.Context, subject string, level topics.TrustLevel, fingerprint, note string) (feed.Published, error) {
	if err := n.waitOwnSynced(ctx); err != nil {
		return feed.Published{}, err
	}
	return n.Dir.Trust(ctx, subject, level, fingerprint, note)
}

// Block puts nodes on the local block list, or takes them off.
func (n *Node) Block(_ context.Context, ids []string, blocked bool) error {
	for _, id := range ids {
		changed, err := n.book.Block(id, blocked)
		if err != nil {
			return err
		}
		n.relevel(changed)
	}
	return nil
}

// NodeDetail tells everything the node holds about another node.
func (n *Node) NodeDetail(ctx context.Context, id string) (*view.NodeDetail, error) {
	return n.Dir.NodeDetail(ctx, n.book, id)
}

// TrustLevel returns a node's trust level, as the APIs show it beside an
// author.
func (n *Node) TrustLevel(author string) string { return string(n.book.Level(author).Level) }

// withTrust fills in the author's level of entries.
func (n *Node) withTrust(es []view.Entry) []view.Entry {
	for i := range es {
		es[i].Trust = n.TrustLevel(es[i].Author)
	}
	return es
}
