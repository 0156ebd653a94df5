package node

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
)

// Following a node: the node follows its node tracker and every tracker its
// latest node record lists, and watches its new node records for trackers
// created later. Those trackers are followed through the node, not stored
// in the follows file: unfollowing the node lets them go.

// followNode follows a node's node tracker and the trackers it lists.
func (n *Node) followNode(id string) error {
	raw, err := topics.NodeKey(id)
	if err != nil {
		return err
	}
	nt := topics.DeriveTrackerID(raw, "")
	n.mu.Lock()
	n.viaNodes[nt] = id
	n.mu.Unlock()
	if err := n.join(nt); err != nil {
		return err
	}
	n.findNode(id)
	return n.refreshNode(nt)
}

// findNode connects to a followed node that is not a member, by a DHT
// lookup, in the background: its node tracker's history comes from it.
func (n *Node) findNode(id string) {
	if n.net == nil || id == n.ID.ID {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
		defer cancel()
		if err := n.net.FindNode(ctx, id); err != nil {
			n.cfg.Logger.Debug("followed node not found yet", "node", id, "err", err)
		}
	}()
}

// refreshNode follows the trackers listed by the latest node record held on
// node tracker nt, if it belongs to a followed node.
func (n *Node) refreshNode(nt topics.TrackerID) error {
	n.mu.Lock()
	id, ok := n.viaNodes[nt]
	n.mu.Unlock()
	if !ok || !n.followsNode(id) {
		return nil
	}
	st, err := n.Log.Tracker(nt)
	if errors.Is(err, feed.ErrNotFound) || (err == nil && st.Info == nil) {
		return nil // no node record yet: sync or gossip will bring one
	}
	if err != nil {
		return err
	}
	a, err := n.Log.Announcement(st.Info.Cursor)
	if err != nil || a.Payload.NodeInfo == nil {
		return err
	}
	var errs []error
	info := a.Payload.NodeInfo
	trackers := info.Trackers
	n.mu.Lock()
	_, ff := n.followFollows[id]
	var nodes []string
	if ff && info.Follows != nil {
		n.followFollows[id] = info.Follows
		trackers = append(slices.Clip(trackers), info.Follows.Trackers...)
		for _, other := range info.Follows.Nodes {
			if _, known := n.viaFollows[other]; !known && other != n.ID.ID {
				n.viaFollows[other] = id
				nodes = append(nodes, other)
			}
		}
	}
	n.mu.Unlock()
	for _, t := range trackers {
		n.mu.Lock()
		_, known := n.viaNodes[t]
		n.viaNodes[t] = id
		n.mu.Unlock()
		if !known {
			errs = append(errs, n.join(t))
		}
	}
	for _, other := range nodes {
		errs = append(errs, n.followNode(other))
	}
	return errors.Join(errs...)
}

// followsNode reports whether the node follows a node: itself, or through
// a node whose follows it follows.
func (n *Node) followsNode(id string) bool {
	if n.follows.HasNode(id) {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.viaFollows[id]
	return ok
}

// unfollowNodes forgets the trackers followed through nodes no longer
// followed, and leaves their topics unless followed otherwise.
func (n *Node) unfollowNodes(ids []string) {
	gone := make(map[string]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
	}
	var leave []topics.TrackerID
	n.mu.Lock()
	for t, id := range n.viaNodes {
		if gone[id] {
			delete(n.viaNodes, t)
			leave = append(leave, t)
		}
	}
	n.mu.Unlock()
	for _, t := range leave {
		if !n.Followed(t) && !t.OwnedBy(n.ID.RawKey) {
			n.net.Unfollow(t)
		}
	}
}

// watchNodes reads every entry stored: it follows the trackers new node
// records of followed nodes list, takes trust and flag records into the
// book, and notes when each promiscuously followed tracker was last read.
func (n *Node) watchNodes(from uint64) {
	defer n.wg.Done()
	r := n.Log.NewReader(from)
	for {
		e, err := r.Next(n.ctx)
		if err != nil {
			return
		}
		switch e.Kind {
		case topics.KindNode:
			if err := n.refreshNode(e.Tracker); err != nil {
				n.cfg.Logger.Warn("following a node's trackers", "node", e.Author, "err", err)
			}
		case topics.KindTrust, topics.KindFlag:
			n.applyRecord(e.Cursor)
		default:
			n.promisc.read(e.Tracker, time.Now())
		}
	}
}

// followsChanged asks publishFollows to run.
func (n *Node) followsChanged() {
	select {
	case n.pokeFollows <- struct{}{}:
	default:
	}
}

// publishFollowsLoop publishes the follows when they change, once the node
// knows its own heads.
func (n *Node) publishFollowsLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.pokeFollows:
			n.publishFollows(n.ctx)
		}
	}
}

// publishFollows puts the node's follows in its node record, unless they
// are private (Config.PrivateFollows: the record then carries none) or the
// node is promiscuous (it follows whatever it learns of). A node record
// lists at most topics.MaxNodeFollowedTrackers trackers and
// MaxNodeFollowedNodes nodes: past them, the first ones are published.
// Publishing the follows it already published changes nothing.
func (n *Node) publishFollows(ctx context.Context) {
	if n.cfg.Promiscuous {
		return
	}
	var f *topics.Follows
	if !n.cfg.PrivateFollows {
		fs := n.follows.Get()
		f = &topics.Follows{Trackers: fs.Trackers, Nodes: fs.Nodes}
		if len(f.Trackers) > topics.MaxNodeFollowedTrackers || len(f.Nodes) > topics.MaxNodeFollowedNodes {
			n.cfg.Logger.Warn("the node record lists only the first of the follows", "trackers", topics.MaxNodeFollowedTrackers, "nodes", topics.MaxNodeFollowedNodes)
			f.Trackers = f.Trackers[:min(len(f.Trackers), topics.MaxNodeFollowedTrackers)]
			f.Nodes = f.Nodes[:min(len(f.Nodes), topics.MaxNodeFollowedNodes)]
		}
	}
	if err := n.waitOwnSynced(ctx); err != nil {
		return
	}
	if !n.followsToSay(f) {
		return
	}
	if _, err := n.SetFollows(ctx, f); err != nil && ctx.Err() == nil {
		n.cfg.Logger.Warn("follows not published", "err", err)
	}
}

// followsToSay reports whether publishing follows f would tell something
// the node's latest node record does not: following nothing, or keeping
// the follows private, needs no node record where none said otherwise.
func (n *Node) followsToSay(f *topics.Follows) bool {
	if f != nil && len(f.Trackers)+len(f.Nodes) > 0 {
		return true
	}
	st, err := n.Log.Tracker(n.ID.NodeTracker())
	if err != nil || st.Info == nil {
		return false
	}
	a, err := n.Log.Announcement(st.Info.Cursor)
	if err != nil || a.Payload.NodeInfo == nil {
		return false
	}
	old := a.Payload.NodeInfo.Follows
	return old != nil && len(old.Trackers)+len(old.Nodes) > 0
}
