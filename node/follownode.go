package node

import (
	"context"
	"errors"
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
	for _, t := range a.Payload.NodeInfo.Trackers {
		n.mu.Lock()
		_, known := n.viaNodes[t]
		n.viaNodes[t] = id
		n.mu.Unlock()
		if !known {
			errs = append(errs, n.join(t))
		}
	}
	return errors.Join(errs...)
}

func (n *Node) followsNode(id string) bool { return n.follows.HasNode(id) }

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

// watchNodes follows the trackers new node records of followed nodes list.
func (n *Node) watchNodes(from uint64) {
	defer n.wg.Done()
	r := n.Log.NewReader(from)
	for {
		e, err := r.Next(n.ctx)
		if err != nil {
			return
		}
		if e.Kind != topics.KindNode {
			continue
		}
		if err := n.refreshNode(e.Tracker); err != nil {
			n.cfg.Logger.Warn("following a node's trackers", "node", e.Author, "err", err)
		}
	}
}
