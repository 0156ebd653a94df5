package httpapi

import (
	"cmp"
	"context"
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxTrackerLabels bounds the trackers /metrics names one by one (those
// holding the most announcements); the rest are summed under "other".
const MaxTrackerLabels = 50

// Metrics are the node's counters, as the Backend reports them for
// /metrics. Maps are keyed by a label's value.
type Metrics struct {
	Peers, Members   int // connected libp2p peers; live memberlist members
	Following, Known int // tracker topics joined; trackers learnt from discovery

	// Messages counts tracker-topic messages by validation outcome
	// (accepted, ignored, rejected); Discovery counts discovery records
	// the same way.
	Messages, Discovery map[string]uint64
	// Ignored counts ignored messages by reason (duplicate, over_budget);
	// SeenDuplicates the copies pubsub dropped unvalidated.
	Ignored        map[string]uint64
	SeenDuplicates uint64
	// Drops counts what was dropped, by where: rpc_queue, validation_queue,
	// subscriptions, discovery, trackers_refused.
	Drops        map[string]uint64
	MemberEvents map[string]uint64 // join, leave, death

	GapRanges, MissingAnnouncements, FrozenChains int
	LogEntries, LogDiskBytes, LogCommits          uint64
	// DiskFull: the log's disk has less free space than the log keeps
	// (--min-free), so nothing is stored; DiskFree is that free space.
	DiskFull bool
	DiskFree uint64
	// Refused counts appends the log refused since start, by why:
	// over_quota, disk_full.
	Refused map[string]uint64
	// PerTracker counts the announcements the log holds of each tracker.
	PerTracker map[string]uint64

	// Reach: Reachability is public, private or unknown; Conns counts
	// connections by kind (direct, relayed); HolePunches counts tried and
	// won.
	Reachability      string
	RelayReservations int
	Conns             map[string]uint64
	HolePunches       map[string]uint64
	DHTPeers          int

	SyncPending int               // trackers waiting to be synced: the sync lag
	IndexBehind uint64            // log entries the search index has yet to read
	Sync        map[string]uint64 // fetches, fetch_failures, received, stored, skipped, violations, served, busy, over_budget

	// Trust counts the nodes at each trust level.
	Trust map[string]int

	// NATS is nil when the node runs no NATS server.
	NATS *NATSMetrics
}

// NATSMetrics are the embedded NATS server's counters.
type NATSMetrics struct {
	Fanned, Lag, FanErrors  uint64
	SlowConsumers           int64
	Clients, Leafnodes      int
	Requests, RequestErrors int
}

type collector struct{ s *Server }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("ttn_"+name, help, labels, nil)
}

var (
	descPeers        = desc("peers", "Connected libp2p peers.")
	descMembers      = desc("members", "Live memberlist members besides this node.")
	descFollowing    = desc("trackers_following", "Tracker topics joined.")
	descKnown        = desc("trackers_known", "Trackers learnt from discovery records.")
	descMessages     = desc("messages_total", "Tracker-topic messages by validation outcome.", "outcome")
	descDiscovery    = desc("discovery_records_total", "Discovery records by validation outcome.", "outcome")
	descIgnored      = desc("messages_ignored_total", "Ignored messages by reason.", "reason")
	descSeen         = desc("messages_seen_duplicates_total", "Copies pubsub dropped before validation: already seen.")
	descDrops        = desc("drops_total", "What was dropped, by where.", "where")
	descMemberEvents = desc("member_events_total", "Membership changes seen.", "kind")
	descGaps         = desc("gap_ranges", "Missing ranges over all chains.")
	descMissing      = desc("missing_announcements", "Announcements missing in the gaps of all chains.")
	descForks        = desc("frozen_chains", "Chains frozen by a fork.")
	descLogEntries   = desc("log_entries", "Entries in the log.")
	descLogBytes     = desc("log_disk_bytes", "The log's size on disk.")
	descLogCommits   = desc("log_commits_total", "Group commits (fsyncs) of the log since start.")
	descDiskFull     = desc("disk_full", "1 while the log's disk has less free space than --min-free: nothing is stored, reads go on.")
	descDiskFree     = desc("disk_free_bytes", "Free space on the log's disk.")
	descRefused      = desc("log_refused_total", "Appends the log refused since start, by why.", "why")
	descPerTracker   = desc("tracker_announcements", "Announcements the log holds, by tracker (the largest; the rest as \"other\").", "tracker")
	descReach        = desc("reachability", "1 for what AutoNAT found this node to be.", "state")
	descRelayRes     = desc("relay_reservations", "Relays holding a reservation for this node.")
	descConns        = desc("connections", "libp2p connections by kind.", "kind")
	descHolePunches  = desc("hole_punches_total", "Hole punches, tried and won.", "result")
	descDHTPeers     = desc("dht_routing_table_peers", "Peers in the DHT routing table.")
	descSyncPending  = desc("sync_pending_trackers", "Trackers waiting to be synced.")
	descIndexBehind  = desc("search_index_behind_entries", "Log entries the search index has yet to read.")
	descSync         = desc("sync_total", "Sync protocol counters.", "what")
	descTrust        = desc("trust_nodes", "Nodes at each trust level (from the trust records held and the block list).", "level")
	descNATSFanned   = desc("nats_fanned_total", "Announcements published to plugins.")
	descNATSLag      = desc("nats_fanout_lag", "Accepted announcements not yet published to plugins.")
	descNATSErrors   = desc("nats_fanout_errors_total", "Announcements that could not be published to plugins.")
	descNATSSlow     = desc("nats_slow_consumers_total", "Plugin connections cut for reading too slowly: their messages dropped.")
	descNATSClients  = desc("nats_clients", "Plugin connections.")
	descNATSLeaf     = desc("nats_leafnodes", "Leafnode connections.")
	descNATSRequests = desc("nats_requests_total", "ttn.api requests, and those answered with an error.", "result")
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPeers, descMembers, descFollowing, descKnown, descMessages,
		descDiscovery, descIgnored, descSeen, descDrops, descMemberEvents, descGaps, descMissing, descForks,
		descLogEntries, descLogBytes, descLogCommits, descDiskFull, descDiskFree, descRefused, descPerTracker, descSyncPending, descIndexBehind, descSync, descTrust,
		descReach, descRelayRes, descConns, descHolePunches, descDHTPeers,
		descNATSFanned, descNATSLag, descNATSErrors, descNATSSlow, descNATSClients, descNATSLeaf, descNATSRequests} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	m, err := c.s.b.Metrics(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPeers, err)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	counters := func(d *prometheus.Desc, byLabel map[string]uint64) {
		for _, k := range slices.Sorted(maps.Keys(byLabel)) {
			counter(d, float64(byLabel[k]), k)
		}
	}
	gauge(descPeers, float64(m.Peers))
	gauge(descMembers, float64(m.Members))
	gauge(descFollowing, float64(m.Following))
	gauge(descKnown, float64(m.Known))
	counters(descMessages, m.Messages)
	counters(descDiscovery, m.Discovery)
	counters(descIgnored, m.Ignored)
	counter(descSeen, float64(m.SeenDuplicates))
	counters(descDrops, m.Drops)
	counters(descMemberEvents, m.MemberEvents)
	gauge(descGaps, float64(m.GapRanges))
	gauge(descMissing, float64(m.MissingAnnouncements))
	gauge(descForks, float64(m.FrozenChains))
	gauge(descLogEntries, float64(m.LogEntries))
	gauge(descLogBytes, float64(m.LogDiskBytes))
	counter(descLogCommits, float64(m.LogCommits))
	full := 0.0
	if m.DiskFull {
		full = 1
	}
	gauge(descDiskFull, full)
	gauge(descDiskFree, float64(m.DiskFree))
	counters(descRefused, m.Refused)
	for t, v := range boundTrackers(m.PerTracker) {
		gauge(descPerTracker, float64(v), t)
	}
	for _, r := range []string{"public", "private", "unknown"} {
		v := 0.0
		if m.Reachability == r {
			v = 1
		}
		gauge(descReach, v, r)
	}
	gauge(descRelayRes, float64(m.RelayReservations))
	for k, v := range m.Conns {
		gauge(descConns, float64(v), k)
	}
	counters(descHolePunches, m.HolePunches)
	gauge(descDHTPeers, float64(m.DHTPeers))
	gauge(descSyncPending, float64(m.SyncPending))
	gauge(descIndexBehind, float64(m.IndexBehind))
	counters(descSync, m.Sync)
	for l, n := range m.Trust {
		gauge(descTrust, float64(n), l)
	}
	if n := m.NATS; n != nil {
		counter(descNATSFanned, float64(n.Fanned))
		gauge(descNATSLag, float64(n.Lag))
		counter(descNATSErrors, float64(n.FanErrors))
		counter(descNATSSlow, float64(n.SlowConsumers))
		gauge(descNATSClients, float64(n.Clients))
		gauge(descNATSLeaf, float64(n.Leafnodes))
		counter(descNATSRequests, float64(n.Requests-n.RequestErrors), "ok")
		counter(descNATSRequests, float64(n.RequestErrors), "error")
	}
}

// boundTrackers keeps the MaxTrackerLabels largest counts and sums the
// rest under "other", so a node following thousands of trackers exports a
// bounded number of series.
func boundTrackers(per map[string]uint64) map[string]uint64 {
	if len(per) <= MaxTrackerLabels {
		return per
	}
	keys := slices.SortedFunc(maps.Keys(per), func(a, b string) int {
		if c := cmp.Compare(per[b], per[a]); c != 0 {
			return c // the largest first
		}
		return cmp.Compare(a, b)
	})
	out := make(map[string]uint64, MaxTrackerLabels+1)
	for i, k := range keys {
		if i < MaxTrackerLabels {
			out[k] = per[k]
		} else {
			out["other"] += per[k]
		}
	}
	return out
}
