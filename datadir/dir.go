// Package datadir is one node's data dir: its identity (the key file), the
// lock that makes one process its owner, the Pebble log, the follows, the
// cursors and the other small state files, and the operations that need no
// network (create a tracker, publish, import, retract, ingest, read the
// log, announce the profile, follows, trust records and flags). It is the
// only package that names the dir's files; it never touches the network.
package datadir

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/gofrs/flock"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
	"github.com/thingtracker/ttn/view"
)

// ErrNothingToPublish is a publish that names no Thing.
var ErrNothingToPublish = errors.New("datadir: nothing to publish: no Things given")

// Dir is a data dir opened by this process: its identity and its log, and
// the operations users ask of them. The CLI uses a Dir directly when no node
// runs on it; a running node serves the same operations over its control
// socket. All methods may be called concurrently.
type Dir struct {
	Path string
	ID   *Identity
	Log  *feed.Log

	lock      *flock.Flock
	publish   sync.Mutex // serialises what publishes on the node tracker: each node record starts from the last
	closeOnce sync.Once
	closeErr  error
}

// Open opens the data dir at path, which must have an identity, and takes
// ownership of it until Close.
func Open(path string, cfg feed.Config) (*Dir, error) {
	id, err := LoadIdentity(path)
	if err != nil {
		return nil, err
	}
	l, err := lock(path)
	if err != nil {
		return nil, err
	}
	log, err := feed.Open(filepath.Join(path, logDir), cfg)
	if err != nil {
		l.Unlock()
		return nil, err
	}
	c := &Dir{Path: path, ID: id, Log: log, lock: l}
	if err := c.installNextKey(); err != nil { // a rotation cut off by a crash
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the log and releases the dir. It is safe to call twice.
func (c *Dir) Close() error {
	c.closeOnce.Do(func() { c.closeErr = errors.Join(c.Log.Close(), c.lock.Unlock()) })
	return c.closeErr
}

// TrackerResult is what CreateTracker did.
type TrackerResult struct {
	ID topics.TrackerID
	// Created is true when the tracker did not exist before; Updated when
	// its description changed.
	Created, Updated bool
}

// CreateTracker creates the tracker info.Name of this node, announcing it and
// a node record that lists it (and keeps the profile and follows). If the tracker exists, it is left alone, or,
// with update, its description is replaced when it differs.
func (c *Dir) CreateTracker(ctx context.Context, info topics.TrackerInfo, update bool) (TrackerResult, error) {
	if info.Name == "" {
		return TrackerResult{}, errors.New("a tracker needs a name")
	}
	id := topics.DeriveTrackerID(c.ID.RawKey, info.Name)
	c.publish.Lock()
	defer c.publish.Unlock()
	_, err := c.Log.Tracker(id)
	exists := err == nil
	if err != nil && !errors.Is(err, feed.ErrNotFound) {
		return TrackerResult{}, err
	}
	if exists && !update {
		return TrackerResult{ID: id}, nil
	}
	own, err := c.OwnTrackers()
	if err != nil {
		return TrackerResult{}, err
	}
	if !slices.Contains(own, id) {
		own = append(own, id)
		slices.SortFunc(own, func(a, b topics.TrackerID) int { return slices.Compare(a[:], b[:]) })
	}
	ps, err := c.publishNode(ctx, []feed.Draft{{Tracker: id, Kind: topics.KindTracker, TrackerInfo: &info}},
		func(n *topics.NodeInfo) { n.Trackers = own })
	if err != nil {
		return TrackerResult{}, err
	}
	return TrackerResult{ID: id, Created: !exists, Updated: exists && ps[0].New}, nil
}

// OwnTrackers lists the trackers this node has announced, besides its node
// tracker.
func (c *Dir) OwnTrackers() ([]topics.TrackerID, error) {
	all, err := c.Log.TrackersAfter(topics.OwnerPrefix(c.ID.RawKey), nil, math.MaxInt)
	if err != nil {
		return nil, err
	}
	var own []topics.TrackerID
	for _, t := range all {
		if t.Owner == c.ID.ID && !t.Node && t.Name != "" {
			own = append(own, t.ID)
		}
	}
	return own, nil
}

// publishChunk bounds the drafts one log request carries, so that a large
// publish does not hold the log's writer for long.
const publishChunk = 512

// PublishOptions change what Publish accepts.
type PublishOptions struct {
	// AllowUnknownParent publishes a Thing whose parents name a Thing
	// (version) this node does not hold.
	AllowUnknownParent bool `json:"allow_unknown_parent,omitempty"`
}

// ErrUnknownParent refuses a Thing whose parent names a Thing version the
// node does not hold (a typo would otherwise make an ancestry nobody can
// follow).
var ErrUnknownParent = errors.New("datadir: unknown parent")

// Publish announces Things on one of this node's trackers: each a new Thing,
// a new version, an edit (same version, changed fields) or, when identical to
// what is announced, nothing (its existing ID comes back with New false).
// Every Thing is checked before any is published, its parents too: each
// must name a Thing (and version, when it names one) that the node holds or
// that comes earlier in things, unless opts allow unknown parents.
func (c *Dir) Publish(ctx context.Context, tracker topics.TrackerID, things []topics.Thing, opts ...PublishOptions) ([]feed.Published, error) {
	if len(things) == 0 {
		return nil, ErrNothingToPublish
	}
	if err := c.ownTracker(tracker); err != nil {
		return nil, err
	}
	if len(opts) == 0 || !opts[0].AllowUnknownParent {
		if err := c.checkParents(tracker, things); err != nil {
			return nil, err
		}
	}
	drafts := make([]feed.Draft, len(things))
	for i := range things {
		drafts[i] = feed.Draft{Tracker: tracker, Kind: topics.KindThing, Thing: &things[i]}
	}
	if err := feed.CheckDrafts(c.ID.RawKey, drafts); err != nil {
		return nil, err
	}
	var out []feed.Published
	for chunk := range slices.Chunk(drafts, publishChunk) {
		ps, err := c.Log.Publish(ctx, c.ID.Signer(), chunk)
		if err != nil {
			return out, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// checkParents refuses a Thing whose parent the node does not hold.
func (c *Dir) checkParents(tracker topics.TrackerID, things []topics.Thing) error {
	for i, th := range things {
		for _, p := range th.Parents {
			pt := p.Tracker
			if pt.IsZero() {
				pt = tracker
			}
			earlier := pt == tracker && slices.ContainsFunc(things[:i], func(e topics.Thing) bool {
				return e.ID == p.Thing && (p.Version == "" || e.Version == p.Version)
			})
			held, err := c.holds(pt, p)
			if err != nil {
				return err
			}
			if !earlier && !held {
				what := pt.String() + "/" + p.Thing
				if p.Version != "" {
					what += " version " + p.Version
				}
				return fmt.Errorf("%w: Thing %q names parent %s, which this node does not hold (follow its tracker, or publish with --allow-unknown-parent)", ErrUnknownParent, th.ID, what)
			}
		}
	}
	return nil
}

// holds reports whether the log holds the Thing a parent names (its
// version, when it names one; its announcement, when it names one).
func (c *Dir) holds(tracker topics.TrackerID, p topics.Parent) (bool, error) {
	if !p.Announcement.IsZero() {
		return c.Log.Has(p.Announcement)
	}
	s, err := c.Log.Thing(tracker, p.Thing)
	if errors.Is(err, feed.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return p.Version == "" || slices.ContainsFunc(s.Versions, func(v feed.VersionState) bool { return v.Version == p.Version }), nil
}

// ownTracker checks that tracker is one of this node's announced trackers.
func (c *Dir) ownTracker(tracker topics.TrackerID) error {
	if tracker == c.ID.NodeTracker() {
		return errors.New("the node tracker carries node records, not Things")
	}
	st, err := c.Log.Tracker(tracker)
	if errors.Is(err, feed.ErrNotFound) || (err == nil && st.Name == "") {
		return fmt.Errorf("unknown tracker %s (create it with 'announcer tracker create')", tracker)
	}
	if err != nil {
		return err
	}
	if st.Owner != c.ID.ID {
		return fmt.Errorf("tracker %s belongs to %s, not to this node", tracker, st.Owner)
	}
	return nil
}

// ImportResult is what Import did.
type ImportResult struct {
	Tracker   TrackerResult
	Published []feed.Published // one per Thing of the document, in order
}

// Import announces a TTN tracker document: its tracker (named by the
// document's id; its description updated when it changed) and its Things.
// Re-importing an unchanged document publishes nothing.
func (c *Dir) Import(ctx context.Context, doc *ttn.Document) (ImportResult, error) {
	drafts := make([]feed.Draft, len(doc.Things))
	id := topics.DeriveTrackerID(c.ID.RawKey, doc.Info.Name)
	for i := range doc.Things {
		drafts[i] = feed.Draft{Tracker: id, Kind: topics.KindThing, Thing: &doc.Things[i]}
	}
	if err := feed.CheckDrafts(c.ID.RawKey, append(drafts, feed.Draft{Tracker: id, Kind: topics.KindTracker, TrackerInfo: &doc.Info})); err != nil {
		return ImportResult{}, err
	}
	tr, err := c.CreateTracker(ctx, doc.Info, true)
	if err != nil {
		return ImportResult{}, err
	}
	if len(doc.Things) == 0 {
		return ImportResult{Tracker: tr}, nil
	}
	// A TTN document's Things may name parents on trackers this node has
	// never seen: an import keeps them as they are.
	ps, err := c.Publish(ctx, tr.ID, doc.Things, PublishOptions{AllowUnknownParent: true})
	return ImportResult{Tracker: tr, Published: ps}, err
}

// Retract hides the Thing version of announcement id, one of this node's.
// Retracting a version already retracted returns the retraction in force.
func (c *Dir) Retract(ctx context.Context, id topics.ID) (feed.Published, error) {
	cur, err := c.Log.Lookup(id)
	if err != nil {
		return feed.Published{}, err
	}
	if cur == 0 {
		return feed.Published{}, fmt.Errorf("announcement %s is not in the log", id)
	}
	a, err := c.Log.Announcement(cur)
	if err != nil {
		return feed.Published{}, err
	}
	if a.Payload.Author != c.ID.ID {
		return feed.Published{}, fmt.Errorf("announcement %s is by %s, not by this node", id, a.Payload.Author)
	}
	if a.Payload.Kind != topics.KindThing || a.Payload.Opaque() {
		return feed.Published{}, fmt.Errorf("announcement %s is a %q, not a Thing", id, a.Payload.Kind)
	}
	ps, err := c.Log.Publish(ctx, c.ID.Signer(), []feed.Draft{{Tracker: a.Payload.Tracker, Kind: topics.KindRetract, Retracts: id}})
	if err != nil {
		return feed.Published{}, err
	}
	return ps[0], nil
}

// IngestResult counts what Ingest did.
type IngestResult struct {
	Stored, Duplicate, Refused int // refused: forks, frozen chains, gap limits
}

// Ingest validates envelopes received from elsewhere (another node's log,
// a file) as sync would, without the clock, and appends them. If any is
// invalid, nothing is appended and the error names the first.
func (c *Dir) Ingest(ctx context.Context, envelopes [][]byte) (IngestResult, error) {
	anns := make([]*topics.Announcement, len(envelopes))
	for i, env := range envelopes {
		a, err := topics.ValidateRotated("", env, time.Time{}) // the log places rotated signers
		if err != nil {
			return IngestResult{}, fmt.Errorf("envelope %d: %w", i+1, err)
		}
		anns[i] = a
	}
	var r IngestResult
	for chunk := range slices.Chunk(anns, publishChunk) {
		rs, err := c.Log.AppendAll(ctx, chunk)
		if err != nil {
			return r, err
		}
		for _, res := range rs {
			switch res.Status {
			case feed.Stored:
				r.Stored++
			case feed.Duplicate:
				r.Duplicate++
			default:
				r.Refused++
			}
		}
	}
	return r, nil
}

// Entries returns up to limit log entries after since.
func (c *Dir) Entries(_ context.Context, since uint64, limit int) ([]view.Entry, error) {
	return c.Log.Entries(since, limit)
}

// Status reports the data dir as stored, without the network: identity,
// follows (fs, or as stored when nil), chain heads, log.
func (c *Dir) Status(fs *FollowSet) (*view.Status, error) {
	if fs == nil {
		stored, err := ReadFollows(c.Path)
		if err != nil {
			return nil, err
		}
		fs = &stored
	}
	heads, err := c.Log.Heads()
	if err != nil {
		return nil, err
	}
	commitment, key := c.KeyView(c.ID.RawKey)
	return &view.Status{Node: c.ID.ID, Fingerprint: c.ID.Fingerprint, Commitment: commitment, Key: key, Follows: *fs,
		Heads: ViewHeads(heads), Log: view.LogStats(c.Log.Stats())}, nil
}
