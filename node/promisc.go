package node

import (
	"slices"
	"sync"
	"time"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/trust"
)

// A promiscuous node follows every tracker it learns of, up to MaxTrackers.
// Trackers of unknown owners may take at most UnknownShare of the slots, so
// that a flood of fresh keys never pushes out the trackers of owners the
// node trusts; when a tracker of an owner it trusts needs a slot and none
// is free, the unknown tracker read least recently (its last announcement
// the oldest) is let go. The trackers are remembered by owner, so that an
// owner whose level changes moves its trackers between the shares.

// promiscuous keeps the trackers a promiscuous node followed on its own.
type promiscuous struct {
	mu      sync.Mutex
	tracked map[topics.TrackerID]*promiscTracker
	byOwner map[string][]topics.TrackerID
	unknown int // trackers whose owner is unknown
}

type promiscTracker struct {
	owner   string
	unknown bool
	read    time.Time // the last announcement stored on it, or when followed
}

func newPromiscuous() *promiscuous {
	return &promiscuous{tracked: make(map[topics.TrackerID]*promiscTracker), byOwner: make(map[string][]topics.TrackerID)}
}

// add remembers a tracker followed on discovery.
func (p *promiscuous) add(t topics.TrackerID, owner string, unknown bool, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.tracked[t]; ok {
		return
	}
	p.tracked[t] = &promiscTracker{owner: owner, unknown: unknown, read: now}
	p.byOwner[owner] = append(p.byOwner[owner], t)
	if unknown {
		p.unknown++
	}
}

// remove forgets a tracker.
func (p *promiscuous) remove(t topics.TrackerID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pt, ok := p.tracked[t]
	if !ok {
		return
	}
	delete(p.tracked, t)
	ts := p.byOwner[pt.owner]
	for i, x := range ts {
		if x == t {
			ts = append(ts[:i], ts[i+1:]...)
			break
		}
	}
	if len(ts) == 0 {
		delete(p.byOwner, pt.owner)
	} else {
		p.byOwner[pt.owner] = ts
	}
	if pt.unknown {
		p.unknown--
	}
}

// read notes that an announcement was stored on t.
func (p *promiscuous) read(t topics.TrackerID, now time.Time) {
	p.mu.Lock()
	if pt, ok := p.tracked[t]; ok {
		pt.read = now
	}
	p.mu.Unlock()
}

// relevel moves an owner's trackers between the shares.
func (p *promiscuous) relevel(owner string, unknown bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.byOwner[owner] {
		pt := p.tracked[t]
		if pt.unknown != unknown {
			pt.unknown = unknown
			if unknown {
				p.unknown++
			} else {
				p.unknown--
			}
		}
	}
}

// unknownCount returns how many trackers of unknown owners are followed.
func (p *promiscuous) unknownCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unknown
}

// leastRead returns the unknown tracker read least recently.
func (p *promiscuous) leastRead() (topics.TrackerID, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var oldest topics.TrackerID
	var at time.Time
	found := false
	for t, pt := range p.tracked {
		if pt.unknown && (!found || pt.read.Before(at)) {
			oldest, at, found = t, pt.read, true
		}
	}
	return oldest, found
}

// maxTrackers is the node's tracker limit.
func (n *Node) maxTrackers() int {
	if n.cfg.MaxTrackers > 0 {
		return n.cfg.MaxTrackers
	}
	return gossipDefaultMaxTrackers
}

// unknownSlots is how many trackers of unknown owners a promiscuous node
// follows at most.
func (n *Node) unknownSlots() int { return int(float64(n.maxTrackers()) * n.cfg.UnknownShare) }

// followDiscovered follows a discovered tracker in promiscuous mode, within
// the shares. It runs for each discovery record, so it must be quick: a
// tracker of an owner the node trusts is followed at once; one of an
// unknown owner goes to followUnknown, which follows them in batches
// (a flood of fresh keys must not hold up the records of trusted owners
// behind thousands of follows). A record that finds the queue full leaves
// its tracker in the discovered list; the owner's next record tries again.
func (n *Node) followDiscovered(d topics.Discovery) {
	l := n.book.Level(d.Owner).Level
	if ignored(l) {
		return
	}
	if l == trust.Unknown {
		if n.promisc.unknownCount()+len(n.unknownQ) >= n.unknownSlots() {
			return // in the discovered list, for review
		}
		select {
		case n.unknownQ <- d:
		default:
		}
		return
	}
	if len(n.net.Following()) >= n.maxTrackers() {
		if t, ok := n.promisc.leastRead(); ok {
			n.cfg.Logger.Info("letting an unknown owner's tracker go for a trusted owner's", "dropped", t.String(), "tracker", d.Tracker.String())
			n.promisc.remove(t)
			if err := n.Unfollow(n.ctx, datadir.FollowSet{Trackers: []topics.TrackerID{t}}); err != nil {
				n.cfg.Logger.Warn("unfollowing", "tracker", t.String(), "err", err)
			}
		}
	}
	if err := n.Follow(n.ctx, datadir.FollowSet{Trackers: []topics.TrackerID{d.Tracker}}); err != nil {
		n.cfg.Logger.Warn("not following discovered tracker", "tracker", d.Tracker.String(), "err", err)
		return
	}
	n.promisc.add(d.Tracker, d.Owner, false, time.Now())
}

// unknownBatch is how many trackers of unknown owners followUnknown
// follows at once (one write of the follows file).
const unknownBatch = 256

// followUnknown follows the trackers of unknown owners that
// followDiscovered queued, in batches, within the unknown share.
func (n *Node) followUnknown() {
	defer n.wg.Done()
	for {
		var batch []topics.Discovery
		select {
		case <-n.ctx.Done():
			return
		case d := <-n.unknownQ:
			batch = append(batch, d)
		}
	drain:
		for len(batch) < unknownBatch {
			select {
			case d := <-n.unknownQ:
				batch = append(batch, d)
			default:
				break drain
			}
		}
		free := n.unknownSlots() - n.promisc.unknownCount()
		var fs datadir.FollowSet
		var owners []string
		for _, d := range batch {
			// The owner may have been placed, or the tracker followed,
			// since the record came.
			if len(fs.Trackers) < free && !n.Followed(d.Tracker) && !slices.Contains(fs.Trackers, d.Tracker) &&
				n.book.Level(d.Owner).Level == trust.Unknown {
				fs.Trackers, owners = append(fs.Trackers, d.Tracker), append(owners, d.Owner)
			}
		}
		if len(fs.Trackers) == 0 {
			continue
		}
		if err := n.Follow(n.ctx, fs); err != nil {
			n.cfg.Logger.Warn("not following discovered trackers", "trackers", len(fs.Trackers), "err", err)
		}
		joined := make(map[topics.TrackerID]bool)
		for _, t := range n.net.Following() {
			joined[t] = true
		}
		now := time.Now()
		for i, t := range fs.Trackers {
			if joined[t] {
				n.promisc.add(t, owners[i], true, now)
			}
		}
	}
}

// gossipDefaultMaxTrackers is the network's tracker limit when the node
// sets none.
var gossipDefaultMaxTrackers = gossip.DefaultConfig().MaxTrackers

// rememberPromiscuous counts the followed trackers of other owners at
// start, as if just followed promiscuously, so that the shares hold across
// restarts.
func (n *Node) rememberPromiscuous() {
	now := time.Now()
	for _, t := range n.follows.Trackers() {
		st, err := n.Log.Tracker(t)
		if err != nil || st.Owner == n.ID.ID {
			continue // nothing held yet: its owner is not known
		}
		n.promisc.add(t, st.Owner, n.book.Level(st.Owner).Level == trust.Unknown, now)
	}
}
