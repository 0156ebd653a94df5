package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/httpapi"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
	"github.com/thingtracker/ttn/view"
)

// api is the node as its NATS and HTTP APIs see it.
type api struct{ n *Node }

var (
	_ natsapi.Backend = api{}
	_ httpapi.Backend = api{}
)

func (a api) Last() uint64                                  { return a.n.Log.Last() }
func (a api) Wait(ctx context.Context, cursor uint64) error { return a.n.Log.Wait(ctx, cursor) }
func (a api) Entries(cursor uint64, limit int) ([]view.Entry, error) {
	es, err := a.n.Log.Entries(cursor, limit)
	return a.n.withTrust(es), err
}

func (a api) NodeDetail(ctx context.Context, id string) (*view.NodeDetail, error) {
	return a.n.NodeDetail(ctx, id)
}

func (a api) Discovered(ctx context.Context) ([]view.Discovered, error) { return a.n.Discovered(ctx) }

func (a api) Publish(ctx context.Context, tracker topics.TrackerID, things []topics.Thing) (*view.PublishResult, error) {
	if err := a.n.waitOwnSynced(ctx); err != nil {
		return nil, err
	}
	ps, err := a.n.Publish(ctx, tracker, things)
	if err != nil {
		return nil, err
	}
	return &view.PublishResult{Published: datadir.ViewPublished(ps)}, nil
}

func (a api) Thing(ctx context.Context, tracker topics.TrackerID, id string) (*view.Thing, error) {
	return a.n.Thing(ctx, tracker, id)
}

func (a api) Ancestry(_ context.Context, tracker topics.TrackerID, id string) (*view.Ancestry, error) {
	return a.n.Dir.Ancestry(tracker, id)
}

func (a api) Things(ctx context.Context, q view.ThingsQuery) (*view.ThingsPage, error) {
	return a.n.Things(ctx, q)
}

func (a api) Status(ctx context.Context) (*view.Status, error) { return a.n.Status(ctx) }

func (a api) Trackers(_ context.Context, after *topics.TrackerID, limit int) (*view.TrackersPage, error) {
	ts, err := a.n.Log.TrackersAfter(nil, after, limit+1)
	if err != nil {
		return nil, err
	}
	page := &view.TrackersPage{Trackers: []view.Tracker{}}
	if len(ts) > limit {
		ts = ts[:limit]
		page.Next = ts[limit-1].ID.String()
	}
	for _, t := range ts {
		v := view.Tracker{ID: t.ID, Owner: t.Owner, Name: t.Name, Node: t.Node}
		if info, err := a.n.trackerInfo(&t); err == nil && info != nil {
			v.Title = info.Title
		}
		hs, err := a.n.Log.TrackerHeads(t.ID)
		if err != nil {
			return nil, err
		}
		v.Heads = datadir.ViewHeads(hs)
		page.Trackers = append(page.Trackers, v)
	}
	return page, nil
}

// trackerInfo returns the description of a tracker from its latest tracker
// announcement, nil for a node tracker or when none is held.
func (n *Node) trackerInfo(t *feed.TrackerState) (*topics.TrackerInfo, error) {
	if t.Info == nil || t.Node {
		return nil, nil
	}
	an, err := n.Log.Announcement(t.Info.Cursor)
	if err != nil {
		return nil, err
	}
	return an.Payload.TrackerInfo, nil
}

// maxDocumentThings bounds the Things of a tracker document: past it, the
// tracker's Things are to be paged through /v1/things.
const maxDocumentThings = 10000

func (a api) TrackerDocument(_ context.Context, id topics.TrackerID) ([]byte, error) {
	t, err := a.n.Log.Tracker(id)
	if err != nil {
		return nil, err
	}
	info, err := a.n.trackerInfo(t)
	if err != nil {
		return nil, err
	}
	if info == nil {
		return nil, fmt.Errorf("tracker %s: %w: no tracker announcement (a node tracker carries node records, not Things)", id, view.ErrNotFound)
	}
	states, err := a.n.Log.ThingsAfter(id[:], nil, maxDocumentThings+1)
	if err != nil {
		return nil, err
	}
	if len(states) > maxDocumentThings {
		return nil, fmt.Errorf("tracker %s has more than %d Things: %w for one document; page through /v1/things?tracker=%s", id, maxDocumentThings, httpapi.ErrTooLarge, id)
	}
	things := make([]topics.Thing, 0, len(states))
	for _, s := range states {
		sum, err := a.n.summary(s)
		if err != nil {
			return nil, err
		}
		if sum != nil {
			things = append(things, *sum.Thing)
		}
	}
	return ttn.Export(*info, things)
}

func (a api) Nodes(context.Context) (*view.Nodes, error) {
	n := a.n
	connected := n.connected()
	return &view.Nodes{
		Self:    view.Node{ID: n.ID.ID, Fingerprint: n.ID.Fingerprint, Addrs: n.Addrs(), GossipAddr: n.GossipAddr(), NATS: n.NATSAddr()},
		Members: viewMembers(n.net.Members(), connected),
		Peers:   len(connected),
	}, nil
}

func (a api) Health(context.Context) (*view.Health, error) {
	n := a.n
	if err := n.ctx.Err(); err != nil {
		return nil, errors.New("node: stopping")
	}
	if _, err := n.Log.Entries(n.Log.Last(), 1); err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	ready := false
	select {
	case <-n.ready:
		ready = true
	default:
	}
	return &view.Health{Status: "ok", Node: n.ID.ID, Ready: ready, Peers: n.Peers(), Log: n.Log.Last()}, nil
}

func (a api) Metrics(ctx context.Context) (*httpapi.Metrics, error) {
	st, err := a.n.Status(ctx)
	if err != nil {
		return nil, err
	}
	net, sy := st.Net, st.Sync
	m := &httpapi.Metrics{
		Peers: net.Peers, Members: net.Members, Following: len(st.Following), Known: st.Known,
		Messages:       map[string]uint64{"accepted": net.Accepted, "ignored": net.Ignored, "rejected": net.Rejected},
		Discovery:      map[string]uint64{"accepted": net.DiscoveryAccepted, "ignored": net.DiscoveryIgnored, "rejected": net.DiscoveryRejected},
		Ignored:        map[string]uint64{"duplicate": net.Duplicates, "over_budget": net.OverBudget, "ignored_author": net.IgnoredAuthors},
		SeenDuplicates: net.SeenDuplicates,
		Drops: map[string]uint64{"rpc_queue": net.DroppedRPCs, "validation_queue": net.DroppedValidations,
			"subscriptions": net.DroppedSubscriptions, "discovery": net.DroppedDiscoveries, "trackers_refused": net.TrackersRefused},
		MemberEvents: map[string]uint64{"join": net.Joins, "leave": net.Leaves, "death": net.Deaths},
		Reachability: net.Reachability, RelayReservations: net.RelayReservations, DHTPeers: net.DHTPeers,
		Conns:       map[string]uint64{"direct": uint64(net.DirectConns), "relayed": uint64(net.RelayedConns)},
		HolePunches: map[string]uint64{"tried": net.HolePunchesTried, "won": net.HolePunchesWon},
		GapRanges:   st.Gaps(), FrozenChains: st.Forks(),
		LogEntries: st.Log.Entries, LogDiskBytes: st.Log.DiskBytes, LogCommits: st.Log.Commits,
		DiskFull: st.Log.DiskFull, DiskFree: st.Log.DiskFree,
		Refused: map[string]uint64{"over_quota": st.Log.OverQuota, "disk_full": st.Log.DiskRefused,
			"void": st.Log.Void, "unplaced": st.Log.Unplaced, "bad_rotation": st.Log.Refused, "voided": st.Log.Voided},
		PerTracker:  map[string]uint64{},
		SyncPending: st.SyncPending, IndexBehind: st.Index.Behind, Trust: st.Trust,
		Sync: map[string]uint64{"fetches": sy.Fetches, "fetch_failures": sy.FetchFailures, "received": sy.Received,
			"stored": sy.Stored, "violations": sy.Violations, "served": sy.Served, "busy": sy.Busy, "over_budget": sy.OverBudget,
			"skipped": sy.Skipped},
	}
	for _, h := range st.Heads {
		gone := missing(h.Gaps)
		m.MissingAnnouncements += int(gone)
		m.PerTracker[h.Tracker.String()] += h.Max - gone
	}
	if s := st.NATS; s != nil {
		m.NATS = &httpapi.NATSMetrics{Fanned: s.Fanned, Lag: s.Lag, FanErrors: s.FanErrors, SlowConsumers: s.SlowConsumers,
			Clients: s.Clients, Leafnodes: s.Leafnodes, Requests: s.Requests, RequestErrors: s.RequestErrors}
	}
	return m, nil
}

// missing counts the seqs in gap ranges.
func missing(gaps []view.Range) uint64 {
	var n uint64
	for _, g := range gaps {
		n += g.To - g.From + 1
	}
	return n
}

func (a api) Search(ctx context.Context, q view.SearchQuery) (*view.SearchResult, error) {
	return a.n.Search(ctx, q)
}
