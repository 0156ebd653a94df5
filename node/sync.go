package node

import (
	"context"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/topics"
)

// History sync: when it runs. A followed tracker is synced from peers when
// the node starts following it, when live traffic shows a gap (a seq
// jumped, or a prev is unknown), and when anti-entropy finds a peer ahead.
// Failed syncs are retried with backoff, a bounded number of times.
const (
	syncWorkers    = 4
	syncRetries    = 6
	syncBackoffMin = time.Second
	syncBackoffMax = time.Minute
	ownSyncTimeout = 30 * time.Second // bound on learning own heads at start
	diskFullWait   = 5 * time.Second  // how often a full disk is looked at again
)

// syncJob is a tracker waiting to be synced.
type syncJob struct {
	tries int
	next  time.Time
}

// syncQueue holds the trackers to sync, each once.
type syncQueue struct {
	mu   sync.Mutex
	jobs map[topics.TrackerID]*syncJob
	busy map[topics.TrackerID]bool
	wake chan struct{}
}

func newSyncQueue() *syncQueue {
	return &syncQueue{jobs: make(map[topics.TrackerID]*syncJob), busy: make(map[topics.TrackerID]bool), wake: make(chan struct{}, 1)}
}

// scheduleSync queues a followed tracker for sync. It never blocks.
func (n *Node) scheduleSync(t topics.TrackerID) {
	if !n.followsOrOwns(t) {
		return // only followed chains are repaired
	}
	n.queueSync(t, 0)
}

// placeDelay is how long after fetching an author's node tracker the node
// fetches the tracker whose announcement it could not place.
const placeDelay = 2 * time.Second

// placeSigner holds an announcement whose signer the log could not place
// (DESIGN "Key rotation") and fetches the author's node tracker, with its
// rotate records, followed or not; once that sync is done the held
// announcement is judged again (rejudge). The tracker it came on is synced
// a little later too, for what else the new key signed.
func (n *Node) placeSigner(a *topics.Announcement) {
	nt := topics.DeriveTrackerID(a.AuthorKey, "")
	n.held.Lock()
	if n.held.n < maxHeld && !slices.ContainsFunc(n.held.m[nt], func(h *topics.Announcement) bool { return h.ID == a.ID }) {
		n.held.m[nt] = append(n.held.m[nt], a)
		n.held.n++
	}
	n.held.Unlock()
	n.queueSync(nt, 0)
	if n.followsOrOwns(a.Payload.Tracker) {
		n.queueSync(a.Payload.Tracker, placeDelay)
	}
}

// maxHeld bounds the announcements held for their signer to be placed: a
// stranger can sign for any author, so what is held is little and goes
// after one more judgement.
const maxHeld = 256

// heldAnns are announcements waiting for their author's node tracker.
type heldAnns struct {
	sync.Mutex
	m     map[topics.TrackerID][]*topics.Announcement // by the author's node tracker
	tries map[topics.TrackerID]int                    // syncs of the node tracker that did not place them
	n     int
}

// placeTries is how many syncs of an author's node tracker (each from a
// random peer: the first may not hold the rotation, or lie) may fail to
// place a held announcement before it is dropped.
const placeTries = 4

// rejudge appends again what was held for the author whose node tracker
// was just synced; what is stored now is forwarded, as the validator would
// have.
func (n *Node) rejudge(nt topics.TrackerID) {
	n.held.Lock()
	as := n.held.m[nt]
	delete(n.held.m, nt)
	n.held.n -= len(as)
	n.held.Unlock()
	var still []*topics.Announcement
	for _, a := range as {
		r, err := n.Log.Append(n.ctx, a)
		if err == nil && r.Status == feed.Unplaced {
			still = append(still, a)
		}
		if err != nil || r.Status != feed.Stored {
			continue
		}
		if err := n.net.Publish(n.ctx, a); err != nil {
			n.cfg.Logger.Debug("not forwarding a placed announcement", "id", a.ID.String(), "err", err)
		}
	}
	n.held.Lock()
	defer n.held.Unlock()
	if len(still) == 0 || n.held.tries[nt]+1 >= placeTries {
		delete(n.held.tries, nt)
		return
	}
	n.held.tries[nt]++
	n.held.m[nt] = append(n.held.m[nt], still...)
	n.held.n += len(still)
	n.queueSync(nt, placeDelay)
}

// queueSync queues a sync of t's history, due after d.
func (n *Node) queueSync(t topics.TrackerID, d time.Duration) {
	q := n.syncQ
	q.mu.Lock()
	if _, ok := q.jobs[t]; !ok {
		q.jobs[t] = &syncJob{next: time.Now().Add(d)}
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (n *Node) followsOrOwns(t topics.TrackerID) bool {
	return n.Followed(t) || t.OwnedBy(n.ID.RawKey)
}

// take returns a due job not being worked on, or how long until one is due.
func (q *syncQueue) take() (topics.TrackerID, *syncJob, time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	wait := time.Hour
	for t, j := range q.jobs {
		if q.busy[t] {
			continue
		}
		if d := time.Until(j.next); d > 0 {
			wait = min(wait, d)
			continue
		}
		q.busy[t] = true
		return t, j, 0
	}
	return topics.TrackerID{}, nil, wait
}

// postpone ends work on a job without counting a try: it is due again
// after d.
func (q *syncQueue) postpone(t topics.TrackerID, j *syncJob, d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.busy, t)
	j.next = time.Now().Add(d)
}

// done ends work on a job: it is removed, or retried later after a failure.
func (q *syncQueue) done(t topics.TrackerID, j *syncJob, ok bool) (gaveUp bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.busy, t)
	if ok {
		delete(q.jobs, t)
		return false
	}
	j.tries++
	if j.tries >= syncRetries {
		// Stay queued, at the longest backoff: a gap no peer can fill
		// must not be asked for again at every live entry.
		j.next = time.Now().Add(syncBackoffMax)
		return true
	}
	backoff := min(syncBackoffMin<<(j.tries-1), syncBackoffMax)
	j.next = time.Now().Add(backoff/2 + rand.N(backoff/2+1))
	return false
}

// pending returns how many trackers wait to be synced.
func (q *syncQueue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.jobs)
}

// syncWorker syncs queued trackers until the node stops.
func (n *Node) syncWorker() {
	defer n.wg.Done()
	for {
		t, j, wait := n.syncQ.take()
		if j != nil && n.Log.DiskFull() {
			// Nothing could be stored: the job waits, its tries unspent,
			// until space is freed (the log said so once).
			n.syncQ.postpone(t, j, diskFullWait)
			j, wait = nil, diskFullWait
		}
		if j == nil {
			timer := time.NewTimer(wait)
			select {
			case <-n.ctx.Done():
				timer.Stop()
				return
			case <-n.syncQ.wake:
			case <-timer.C:
			}
			timer.Stop()
			continue
		}
		r, err := n.net.SyncTracker(n.ctx, t)
		if r.Stored > 0 {
			n.cfg.Logger.Info("synced history", "tracker", t.String(), "stored", r.Stored, "forks", r.Forks)
		}
		if n.syncQ.done(t, j, err == nil) {
			n.cfg.Logger.Warn("giving up syncing tracker for now", "tracker", t.String(), "err", err)
		}
		n.rejudge(t)
	}
}

// antiEntropy compares, now and then, what a random peer holds of the
// followed trackers with what this node holds, and syncs where they differ:
// how partitions converge once they heal. A promiscuous node also follows
// the trackers it learns of this way.
func (n *Node) antiEntropy() {
	defer n.wg.Done()
	select {
	case <-n.ready:
	case <-n.ctx.Done():
		return
	}
	t := time.NewTicker(n.cfg.AntiEntropyInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		peers := n.net.SyncPeers()
		if len(peers) == 0 || n.Log.DiskFull() { // nothing found could be stored
			continue
		}
		n.compareWith(n.ctx, peers[rand.N(len(peers))])
	}
}

// compareWith asks p for its heads (of every tracker when promiscuous, else
// of the followed ones) and schedules a sync of each tracker it is ahead on
// or differs on.
func (n *Node) compareWith(ctx context.Context, p string) {
	var filter []topics.TrackerID
	var owners map[topics.TrackerID]bool
	if !n.cfg.Promiscuous { // a promiscuous node follows every node tracker it learns of
		owners = n.ownersNodeTrackers()
		filter = append(n.Following(), slices.Collect(maps.Keys(owners))...)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	heads, err := n.net.Inventory(ctx, p, filter)
	if err != nil {
		n.cfg.Logger.Debug("inventory failed", "peer", p, "err", err)
		return
	}
	n.learn(heads, owners)
}

// learn follows (when promiscuous) and schedules the trackers of heads
// that this node lacks or holds less of, among those it follows or owns
// and the owners' node trackers given.
func (n *Node) learn(heads []gossip.WireHead, owners map[topics.TrackerID]bool) {
	if n.cfg.Promiscuous {
		var fs datadir.FollowSet
		seen := make(map[topics.TrackerID]bool)
		for _, h := range heads {
			if !seen[h.Tracker] && !n.followsOrOwns(h.Tracker) {
				seen[h.Tracker] = true
				fs.Trackers = append(fs.Trackers, h.Tracker)
			}
		}
		if err := n.Follow(n.ctx, fs); err != nil { // one write of the follows file
			n.cfg.Logger.Debug("not following every tracker from inventory", "err", err)
		}
	}
	for _, h := range heads {
		if !owners[h.Tracker] && !n.followsOrOwns(h.Tracker) {
			continue
		}
		mine, err := n.Log.TrackerHeads(h.Tracker)
		if err != nil {
			continue
		}
		behind := true
		for _, m := range mine {
			if m.Author == h.Author && len(m.Gaps) == 0 && m.Fork == nil && (m.Seq > h.Seq || m.Seq == h.Seq && m.ID == h.ID) {
				behind = false
			}
		}
		if behind && !n.overQuota(h) {
			n.queueSync(h.Tracker, 0)
		}
	}
}

// ownersNodeTrackers returns the node trackers of the owners of the
// trackers the node follows, which it does not follow itself: their
// rotate records say which of those owners' keys sign for them, so
// anti-entropy compares them too (a node away during a rotation would
// otherwise go on believing a thief's entries signed with the old key).
func (n *Node) ownersNodeTrackers() map[topics.TrackerID]bool {
	out := make(map[topics.TrackerID]bool)
	for _, t := range n.follows.Trackers() {
		st, err := n.Log.Tracker(t)
		if err != nil || st.Node || st.Owner == n.ID.ID {
			continue
		}
		raw, err := topics.NodeKey(st.Owner)
		if nt := topics.DeriveTrackerID(raw, ""); err == nil && !n.Followed(nt) {
			out[nt] = true
		}
	}
	return out
}

// overQuota reports whether the log refuses what h holds more of, for its
// author's or its tracker's quota: fetching it again at every comparison
// would only be refused again.
func (n *Node) overQuota(h gossip.WireHead) bool {
	if h.Author == n.ID.ID {
		return false // own chains are not bound, and must come back after a restore
	}
	key, err := topics.NodeKey(h.Author)
	return err == nil && n.Log.OverQuota(h.Tracker, key)
}

// syncOwn learns this node's own chains from its peers before it lets a
// publish allocate a seq: a data dir restored from an old backup would
// otherwise sign a second entry for a seq it already used, a fork.
func (n *Node) syncOwn(ctx context.Context) {
	defer n.closeOwn()
	ctx, cancel := context.WithTimeout(ctx, ownSyncTimeout)
	defer cancel()
	for _, p := range n.net.SyncPeers() {
		heads, err := n.net.Inventory(ctx, p, nil)
		if err != nil {
			continue
		}
		for _, h := range heads {
			if h.Author != n.ID.ID {
				continue
			}
			mine, err := n.Log.TrackerHeads(h.Tracker)
			if err != nil {
				continue
			}
			if len(mine) == 0 || mine[0].Max < h.Seq {
				n.cfg.Logger.Warn("peers hold more of this node's own chain than its log; fetching it", "tracker", h.Tracker.String(), "peer seq", h.Seq)
				n.net.Fetch(ctx, p, h.Tracker)
			}
		}
		return // one peer that answered is enough
	}
}

func (n *Node) closeOwn() { n.ownOnce.Do(func() { close(n.ownSynced) }) }

// waitOwnSynced blocks publishes until the node knows its own heads, or
// long enough that it will not learn them.
func (n *Node) waitOwnSynced(ctx context.Context) error {
	select {
	case <-n.ownSynced:
		return nil
	case <-time.After(n.cfg.ReadyTimeout + ownSyncTimeout):
		n.closeOwn()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
