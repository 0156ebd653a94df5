// Package control is the local control channel of a running node: the CLI's
// operations (create a tracker, publish, import, follow, status, subscribe,
// …) sent by a process of the dir's owner to the node that owns the data
// dir, or, when no node runs, done on the dir itself (Open). It is a Unix
// socket (DIR/control.sock, mode 0600, the caller's user checked through the
// kernel) on Linux and macOS, and a named pipe whose access list admits
// only the owner on Windows.
//
// The protocol: one request per connection, a JSON object on one line,
// answered by one response line or, for "subscribe", a stream of entry
// lines until either side closes. A failed operation answers an error with
// a code, so that errors.Is works the same through a running node as on
// the dir itself (see Error).
package control

import (
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
	"github.com/thingtracker/ttn/view"
)

// Bounds of the protocol.
const (
	// MaxRequest bounds one request line: a publish or an ingest of more
	// is split by the client (the node reads what it was sent whole).
	MaxRequest = 8 << 20
	// maxChunk is how much a client puts in one publish or ingest request.
	maxChunk = MaxRequest / 2
)

// readTimeout bounds how long the node waits for a request line after a
// connection opens (a variable for tests).
var readTimeout = 10 * time.Second

// The operations.
const (
	OpCreateTracker = "create_tracker"
	OpPublish       = "publish"
	OpImport        = "import"
	OpRetract       = "retract"
	OpIngest        = "ingest"
	OpEntries       = "entries"
	OpStatus        = "status"
	OpFollow        = "follow"
	OpUnfollow      = "unfollow"
	OpFollows       = "follows"
	OpSubscribe     = "subscribe"
	OpTrust         = "trust"
	OpFlag          = "flag"
	OpProfile       = "profile"
	OpBlock         = "block"
	OpUnblock       = "unblock"
	OpNode          = "node"
	OpDiscovered    = "discovered"
	OpDismiss       = "dismiss"
	OpCommit        = "commit"
	OpRotate        = "rotate"
	OpSearch        = "search"
	OpReindex       = "reindex"
)

// request is a control request; which fields count depends on Op.
type request struct {
	Op        string                 `json:"op"`
	Info      *topics.TrackerInfo    `json:"info,omitempty"`
	Update    bool                   `json:"update,omitempty"`
	Tracker   topics.TrackerID       `json:"tracker,omitzero"`
	Things    []topics.Thing         `json:"things,omitempty"`
	Publish   datadir.PublishOptions `json:"publish,omitzero"`
	Doc       *ttn.Document          `json:"doc,omitempty"`
	ID        topics.ID              `json:"id,omitzero"`
	Envelopes [][]byte               `json:"envelopes,omitempty"`
	Since     uint64                 `json:"since,omitempty"`
	Limit     int                    `json:"limit,omitempty"`
	Follows   datadir.FollowSet      `json:"follows,omitzero"`
	Followed  bool                   `json:"followed,omitempty"`
	Trust     *topics.Trust          `json:"trust,omitempty"`
	Flag      *topics.Flag           `json:"flag,omitempty"`
	Profile   *datadir.Profile       `json:"profile,omitempty"`
	Nodes     []string               `json:"nodes,omitempty"`  // block, unblock, node, dismiss
	Commit    string                 `json:"commit,omitempty"` // commit; rotate: the next commitment
	Key       []byte                 `json:"key,omitempty"`    // rotate: the new private key (libp2p protobuf)
	Reason    string                 `json:"reason,omitempty"` // rotate
	Search    *view.SearchQuery      `json:"search,omitempty"` // search
}

// response is a control response line.
type response struct {
	Error  *Error         `json:"error,omitempty"`
	Result jsontext.Value `json:"result,omitempty"`
	Entry  *view.Entry    `json:"entry,omitempty"` // subscribe streams these
}
