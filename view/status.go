package view

import (
	"time"

	"github.com/thingtracker/ttn/topics"
)

// Status is what a data dir, and the node running on it, report: `announcer
// status --format json`, the control channel's status and ttn.api.status
// all show it.
type Status struct {
	Node        string    `json:"node"`
	Fingerprint string    `json:"fingerprint"`
	Running     bool      `json:"running"` // false: read from the dir, no node runs
	Follows     FollowSet `json:"follows"` // stored
	// Commitment is the node's commitment to its recovery key, "" when it
	// made none (announcer key commit).
	Commitment string `json:"commitment,omitempty"`
	// Key is the node's key state once it rotated its key.
	Key *KeyState `json:"key,omitempty"`

	Addrs      []string `json:"addrs,omitempty"`
	GossipAddr string   `json:"gossip_addr,omitempty"`
	Control    string   `json:"control,omitempty"`

	Peers   int           `json:"peers"`
	Members []Member      `json:"members,omitempty"`
	Events  []MemberEvent `json:"member_events,omitempty"`

	Following []topics.TrackerID `json:"following,omitempty"` // joined topics, own trackers included
	Known     int                `json:"known_trackers"`      // learnt from discovery records

	Heads       []Head     `json:"heads"`
	Log         LogStats   `json:"log"`
	Net         NetStats   `json:"net"`
	Sync        SyncStats  `json:"sync"`
	SyncPending int        `json:"sync_pending"` // trackers waiting to be synced
	NATS        *NATSStats `json:"nats,omitempty"`
	// Index is the search index's progress, for a running node.
	Index *IndexStats `json:"index,omitempty"`
	// Trust counts the nodes at each trust level (unknown: those the
	// records name and no level reaches), for a running node.
	Trust map[string]int `json:"trust,omitempty"`
}

// Gaps counts the missing ranges over all chains.
func (s *Status) Gaps() int {
	n := 0
	for _, h := range s.Heads {
		n += len(h.Gaps)
	}
	return n
}

// Forks counts the frozen chains.
func (s *Status) Forks() int {
	n := 0
	for _, h := range s.Heads {
		if h.Fork != nil {
			n++
		}
	}
	return n
}

// FollowSet is what a node follows: trackers, and nodes (whose node
// tracker, and every tracker it lists, it follows).
type FollowSet struct {
	Trackers []topics.TrackerID `json:"trackers"`
	Nodes    []string           `json:"nodes,omitempty"` // node IDs
}

// Member is another member of the network, as this node sees it.
type Member struct {
	ID         string    `json:"id"`
	GossipAddr string    `json:"gossip_addr"`
	State      string    `json:"state"` // alive, suspect, dead, left
	Since      time.Time `json:"since"`
	Connected  bool      `json:"connected"` // a libp2p connection is open
}

// MemberEvent is a membership change the node noticed.
type MemberEvent struct {
	Time time.Time `json:"time"`
	ID   string    `json:"id"`
	Kind string    `json:"kind"` // join, leave, death
}

// The counters below mirror the snapshots of the packages that keep them
// field for field (feed.Stats, gossip.Stats, gossip.SyncStats,
// natsapi.Stats), so that node converts one into the other in one
// expression, and a counter added there without its mirror here does not
// compile.

// LogStats are the log's counters.
type LogStats struct {
	Entries     uint64 `json:"entries"`      // last cursor: entries stored, fork evidence included
	Appended    uint64 `json:"appended"`     // appends stored since open
	Duplicates  uint64 `json:"duplicates"`   // appends already stored
	Forks       uint64 `json:"forks"`        // forks detected since open
	Frozen      uint64 `json:"frozen"`       // appends refused because their chain is frozen
	GapLimited  uint64 `json:"gap_limited"`  // appends refused by the per-chain gap cap
	OverQuota   uint64 `json:"over_quota"`   // appends refused by an author's or tracker's quota
	DiskFull    bool   `json:"disk_full"`    // less free space than the log leaves: appends refused
	DiskFree    uint64 `json:"disk_free"`    // free bytes on the log's disk, when last read
	DiskRefused uint64 `json:"disk_refused"` // announcements refused for want of space
	Commits     uint64 `json:"commits"`      // group commits (fsyncs) since open
	MaxGroup    uint64 `json:"max_group"`    // the largest group committed at once
	DiskBytes   uint64 `json:"disk_bytes"`   // the store's size on disk, write-ahead log included
	DataBytes   uint64 `json:"data_bytes"`   // the size of the store's tables and blob files
	// Key rotation: appends refused as void (an old key past the heads its
	// author vouched for), unplaced (a signer the log cannot place) or
	// refused (a rotate to a key not committed to), and held entries
	// voided by a rotation since open.
	Void     uint64 `json:"void,omitempty"`
	Unplaced uint64 `json:"unplaced,omitempty"`
	Refused  uint64 `json:"refused,omitempty"`
	Voided   uint64 `json:"voided,omitempty"`
}

// NetStats are the network's counters: peers, validation outcomes, drops,
// membership events, reach (NAT traversal and the DHT).
type NetStats struct {
	Peers    int `json:"peers"`
	Members  int `json:"members"`
	Trackers int `json:"trackers"`

	Accepted       uint64 `json:"accepted"`
	Ignored        uint64 `json:"ignored"`
	Rejected       uint64 `json:"rejected"`
	Duplicates     uint64 `json:"duplicates"`
	OverBudget     uint64 `json:"over_budget"`
	IgnoredAuthors uint64 `json:"ignored_authors"`
	SeenDuplicates uint64 `json:"seen_duplicates"`

	DiscoveryAccepted uint64 `json:"discovery_accepted"`
	DiscoveryIgnored  uint64 `json:"discovery_ignored"`
	DiscoveryRejected uint64 `json:"discovery_rejected"`

	DroppedRPCs          uint64 `json:"dropped_rpcs"`
	DroppedValidations   uint64 `json:"dropped_validations"`
	DroppedSubscriptions uint64 `json:"dropped_subscriptions"`
	DroppedDiscoveries   uint64 `json:"dropped_discoveries"`
	TrackersRefused      uint64 `json:"trackers_refused"`

	Joins  uint64 `json:"joins"`
	Leaves uint64 `json:"leaves"`
	Deaths uint64 `json:"deaths"`

	Reachability      string `json:"reachability"` // public, private, unknown
	RelayReservations int    `json:"relay_reservations"`
	DirectConns       int    `json:"direct_conns"`
	RelayedConns      int    `json:"relayed_conns"`
	HolePunchesTried  uint64 `json:"hole_punches_tried"`
	HolePunchesWon    uint64 `json:"hole_punches_won"`
	DHTPeers          int    `json:"dht_peers"` // the DHT routing table's size
}

// SyncStats count the sync protocol's work.
type SyncStats struct {
	Fetches       uint64 `json:"fetches"`
	FetchFailures uint64 `json:"fetch_failures"`
	Received      uint64 `json:"received"`
	Stored        uint64 `json:"stored"`
	Skipped       uint64 `json:"skipped"`
	Violations    uint64 `json:"violations"`
	Served        uint64 `json:"served"`
	ServedBytes   uint64 `json:"served_bytes"`
	Busy          uint64 `json:"busy"`
	OverBudget    uint64 `json:"over_budget"`
}

// IndexStats are the search index's counters (search.Stats).
type IndexStats struct {
	Cursor uint64 `json:"cursor"` // the last log entry applied
	Behind uint64 `json:"behind"` // log entries yet to apply
	Docs   uint64 `json:"docs"`   // documents written since the node started
}

// NATSStats are the embedded NATS server's counters.
type NATSStats struct {
	Addr           string `json:"addr,omitempty"`
	Fanned         uint64 `json:"fanned"`
	Cursor         uint64 `json:"cursor"`
	Lag            uint64 `json:"lag"`
	FanErrors      uint64 `json:"fan_errors"`
	SlowConsumers  int64  `json:"slow_consumers"`
	Clients        int    `json:"clients"`
	Leafnodes      int    `json:"leafnodes"`
	Requests       int    `json:"requests"`
	RequestErrors  int    `json:"request_errors"`
	PublishLimited uint64 `json:"publish_limited"`
}

// Nodes is this node, its members and its peers.
type Nodes struct {
	Self    Node     `json:"self"`
	Members []Member `json:"members"`
	Peers   int      `json:"peers"` // connected libp2p peers, members or not
}

// Node describes a node.
type Node struct {
	ID          string   `json:"id"`
	Fingerprint string   `json:"fingerprint"`
	Addrs       []string `json:"addrs"`
	GossipAddr  string   `json:"gossip_addr,omitempty"`
	NATS        string   `json:"nats,omitempty"`
}

// Health describes the node in a few words.
type Health struct {
	Status string `json:"status"` // "ok"
	Node   string `json:"node"`
	Ready  bool   `json:"ready"` // past WaitReady: connected to the members it joined, or alone by design
	Peers  int    `json:"peers"`
	Log    uint64 `json:"log_entries"`
}
