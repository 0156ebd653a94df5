package node

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/thingtracker/ttn/control"
	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/httpapi"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/search"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
	"github.com/thingtracker/ttn/web"
)

// Config configures a running node. The zero value of each field means its
// default.
type Config struct {
	// Dir is the data dir. Required. A missing identity is created.
	Dir string
	// Logger receives the node's messages. Nil discards them.
	Logger *slog.Logger

	// Network: see gossip.Config for each.
	Listen      []string
	GossipAddr  string
	Join        []string
	Bootstrap   []string
	Keyring     [][]byte
	MaxPeers    int
	MaxTrackers int

	Reachability   string
	NoRelayService bool
	NoNATPortMap   bool
	PSK            []byte

	// Follow are trackers and nodes to follow besides those stored in the
	// dir; they are added to the stored follows.
	Follow datadir.FollowSet
	// FollowFollows are nodes to follow with what they publicly follow
	// (their node records' follows: those trackers, and those nodes with
	// their trackers), for as long as the node runs. The nodes themselves
	// are added to the stored follows.
	FollowFollows []string
	// Promiscuous makes the node follow every tracker it learns of from
	// discovery records, up to MaxTrackers.
	Promiscuous bool
	// UnknownShare is the share of MaxTrackers a promiscuous node gives
	// trackers of unknown owners. Zero means one half.
	UnknownShare float64
	// PrivateFollows keeps the node's follows out of its node record.
	PrivateFollows bool

	// TrustDepth is how many hops the web of trust reaches. Zero means
	// datadir.DefaultTrustDepth.
	TrustDepth int
	// Budgets are the announcement budgets and storage quotas of authors
	// below trusted. Zero fields mean DefaultBudgets'.
	Budgets Budgets
	// OnProgress, if set, is told how each history fetch is going (see
	// gossip.Config.OnProgress).
	OnProgress func(topics.TrackerID, gossip.FetchResult)

	// DiscoveryInterval is how often the node re-announces its trackers'
	// discovery records. Zero means five minutes.
	DiscoveryInterval time.Duration
	// AntiEntropyInterval is how often the node compares its followed
	// chains with a random peer's. Zero means one minute.
	AntiEntropyInterval time.Duration
	// ReadyTimeout bounds how long WaitReady waits for peers. Zero means
	// ten seconds.
	ReadyTimeout time.Duration
	// MinFree, AuthorQuota and TrackerQuota bound the log's storage (see
	// feed.Config): zero means their defaults, negative none.
	MinFree, AuthorQuota, TrackerQuota int64
	// NATS, if set, runs the embedded NATS server for plugins.
	NATS *natsapi.Config
	// HTTP, if set, serves the HTTP API.
	HTTP *httpapi.Config
	// NoPages leaves the pages (package web) off the HTTP listener. Their
	// forms, which act on the node, are served only when it is loopback,
	// and not with ReadOnlyPages (for pages published through a proxy).
	NoPages, ReadOnlyPages bool

	// Heartbeat and ProbeInterval tune GossipSub and memberlist (tests
	// shrink them). Zero means their defaults.
	Heartbeat, ProbeInterval time.Duration
}

// DefaultConfig returns the node's own defaults; those of the network, the
// log and the APIs are their packages' (gossip, feed, natsapi, httpapi
// DefaultConfig). Dir must still be set.
func DefaultConfig() Config {
	return Config{
		Logger:              slog.New(slog.DiscardHandler),
		DiscoveryInterval:   5 * time.Minute,  // discovery records also go out on change
		AntiEntropyInterval: time.Minute,      // one random peer compared per interval
		ReadyTimeout:        10 * time.Second, // then the node runs alone until a peer comes
		UnknownShare:        0.5,              // a flood of fresh keys holds half the slots at most
		Budgets:             DefaultBudgets(),
	}
}

// withDefaults fills zero fields from DefaultConfig and reports every
// problem at once.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.DiscoveryInterval == 0 {
		c.DiscoveryInterval = d.DiscoveryInterval
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = d.ReadyTimeout
	}
	if c.AntiEntropyInterval == 0 {
		c.AntiEntropyInterval = d.AntiEntropyInterval
	}
	if c.UnknownShare == 0 {
		c.UnknownShare = d.UnknownShare
	}
	for _, f := range []struct{ b, d *Budget }{{&c.Budgets.Unknown, &d.Budgets.Unknown}, {&c.Budgets.Web, &d.Budgets.Web}} {
		f.b.Rate = cmp.Or(f.b.Rate, f.d.Rate)
		f.b.Burst = cmp.Or(f.b.Burst, f.d.Burst)
		f.b.Quota = cmp.Or(f.b.Quota, f.d.Quota)
	}
	var errs []error
	if c.UnknownShare < 0 || c.UnknownShare > 1 {
		errs = append(errs, fmt.Errorf("node: Config.UnknownShare %v: want a share from 0 to 1", c.UnknownShare))
	}
	for name, b := range map[string]Budget{"Unknown": c.Budgets.Unknown, "Web": c.Budgets.Web} {
		if b.Rate < 0 || b.Burst < 0 {
			errs = append(errs, fmt.Errorf("node: Config.Budgets.%s: rate and burst must not be negative", name))
		}
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("node: Config.Dir is required"))
	}
	for name, v := range map[string]time.Duration{"DiscoveryInterval": c.DiscoveryInterval, "ReadyTimeout": c.ReadyTimeout, "AntiEntropyInterval": c.AntiEntropyInterval} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("node: Config.%s %v is negative", name, v))
		}
	}
	return c, errors.Join(errs...)
}

// Node is a running node: a data dir on the network, serving its control
// channel and its APIs. Its methods may be called concurrently.
type Node struct {
	*datadir.Dir
	cfg     Config
	net     *gossip.Node
	follows *datadir.Follows
	ctl     *control.Server
	nats    *natsapi.Server // nil when off
	http    *httpapi.Server // nil when off

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	ready     chan struct{} // closed once WaitReady returns: the backlog may go out
	readyOnce sync.Once
	ownSynced chan struct{} // closed once the node knows its own heads from peers
	ownOnce   sync.Once
	syncQ     *syncQueue

	book     *datadir.Book        // trust levels and flags
	index    *search.Index        // the full-text index, fed from the log
	indexSrc *datadir.LogSource   // what the index reads, and names of trackers and nodes
	disc     *datadir.Discoveries // trackers learnt from discovery records
	promisc  *promiscuous         // trackers followed promiscuously
	// unknownQ holds discovered trackers of unknown owners for
	// followUnknown (promiscuous nodes).
	unknownQ chan topics.Discovery
	held     heldAnns      // announcements waiting for their signer to be placed
	quotas   *quotaByLevel // the log's quota per author, by level

	mu    sync.Mutex
	dirty map[topics.TrackerID]struct{} // own trackers whose discovery record is due
	// viaNodes are the trackers followed because a followed node lists
	// them (its node tracker included), each with the node.
	viaNodes map[topics.TrackerID]string
	// followFollows are the nodes whose follows are followed (with each,
	// what its follows listed last), and viaFollows the nodes followed
	// through them, each with the node that listed it.
	followFollows map[string]*topics.Follows
	viaFollows    map[string]string
	// viaTrust are the node trackers followed because their nodes'
	// records count (see relevel), each with the node.
	viaTrust    map[topics.TrackerID]string
	pokeDis     chan struct{}
	pokeFollows chan struct{} // the follows changed: publish them

	closeOnce sync.Once
	closeErr  error
}

// New opens the data dir (creating a missing identity), joins the network
// and serves the control channel. Call WaitReady to wait for peers, and
// Leave (or Close) to stop.
func New(ctx context.Context, cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, _, err := datadir.InitIdentity(cfg.Dir); err != nil {
		return nil, err
	}
	quotas := &quotaByLevel{budgets: cfg.Budgets}
	dir, err := datadir.Open(cfg.Dir, feed.Config{Logger: cfg.Logger.With("component", "log"),
		MinFree: cfg.MinFree, AuthorQuota: cfg.AuthorQuota, TrackerQuota: cfg.TrackerQuota, AuthorQuotaOf: quotas.of})
	if err != nil {
		return nil, err
	}
	n := &Node{Dir: dir, cfg: cfg, promisc: newPromiscuous(), unknownQ: make(chan topics.Discovery, unknownBatch), held: heldAnns{m: make(map[topics.TrackerID][]*topics.Announcement), tries: make(map[topics.TrackerID]int)}, quotas: quotas,
		dirty: make(map[topics.TrackerID]struct{}), pokeDis: make(chan struct{}, 1), pokeFollows: make(chan struct{}, 1), ready: make(chan struct{}),
		ownSynced: make(chan struct{}), syncQ: newSyncQueue(), viaNodes: make(map[topics.TrackerID]string),
		viaTrust: make(map[topics.TrackerID]string), followFollows: make(map[string]*topics.Follows), viaFollows: make(map[string]string)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.start(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) start(ctx context.Context) error {
	var err error
	if n.follows, err = datadir.LoadFollows(n.Path); err != nil {
		return err
	}
	for _, id := range n.cfg.FollowFollows {
		if _, err := topics.NodeKey(id); err != nil {
			return fmt.Errorf("follow-follows: %w", err)
		}
		n.followFollows[id] = nil
		n.cfg.Follow.Nodes = append(n.cfg.Follow.Nodes, id)
	}
	if err := n.follows.Change(n.cfg.Follow, datadir.FollowSet{}); err != nil {
		return err
	}
	if n.disc, err = datadir.OpenDiscoveries(n.Path); err != nil {
		return err
	}
	watchFrom := n.Log.Last() // records and node records from here on are watched
	if n.book, err = n.OpenBook(ctx, n.cfg.TrustDepth); err != nil {
		return err
	}
	n.quotas.book.Store(n.book)
	if n.index, n.indexSrc, err = datadir.OpenIndex(n.Dir, true, n.cfg.Logger.With("component", "search")); err != nil {
		return err
	}
	store := LogStore{Log: n.Log, OnGap: n.scheduleSync, OnUnplaced: n.placeSigner}
	n.net, err = gossip.New(ctx, gossip.Config{
		Key:            n.ID.Key,
		Store:          store,
		History:        store,
		Logger:         n.cfg.Logger.With("component", "gossip"),
		Listen:         n.cfg.Listen,
		GossipAddr:     n.cfg.GossipAddr,
		Join:           n.cfg.Join,
		Bootstrap:      n.cfg.Bootstrap,
		Keyring:        n.cfg.Keyring,
		Reachability:   n.cfg.Reachability,
		NoRelayService: n.cfg.NoRelayService,
		NoNATPortMap:   n.cfg.NoNATPortMap,
		PSK:            n.cfg.PSK,
		Peers:          datadir.Peers{Dir: n.Path},
		MaxPeers:       n.cfg.MaxPeers,
		MaxTrackers:    n.cfg.MaxTrackers,
		Standing:       n.standing,
		OnDiscovery:    n.discovered,
		OnProgress:     n.cfg.OnProgress,
		Heartbeat:      n.cfg.Heartbeat,
		ProbeInterval:  n.cfg.ProbeInterval,
	})
	if err != nil {
		return err
	}
	own, err := n.OwnTrackers()
	if err != nil {
		return err
	}
	for _, t := range append(own, n.ID.NodeTracker()) {
		n.follow(t)
	}
	for _, t := range n.follows.Trackers() {
		n.follow(t)
	}
	if n.cfg.Promiscuous {
		n.rememberPromiscuous()
	}
	n.followTrusted()
	for _, id := range n.follows.Get().Nodes {
		if err := n.followNode(id); err != nil {
			n.cfg.Logger.Warn("not following node", "node", id, "err", err)
		}
	}
	if n.ctl, err = control.Serve(n.Path, controlHandler{n}, n.cfg.Logger.With("component", "control")); err != nil {
		return err
	}
	if n.cfg.NATS != nil {
		c := *n.cfg.NATS
		c.Logger = n.cfg.Logger.With("component", "nats")
		if n.nats, err = natsapi.New(ctx, c, api{n}); err != nil {
			return err
		}
	}
	if n.cfg.HTTP != nil {
		c := *n.cfg.HTTP
		c.Logger = n.cfg.Logger.With("component", "http")
		if !n.cfg.NoPages {
			c.Pages = web.New(web.Config{Actions: !n.cfg.ReadOnlyPages && (c.Addr == "" || c.Addr == "0" || web.LoopbackHost(c.Addr)), Search: api{n}, Logger: c.Logger}, pages{api{n}})
		}
		if n.http, err = httpapi.New(c, api{n}); err != nil {
			return err
		}
	}
	n.wg.Add(5 + syncWorkers)
	n.followsChanged() // whether they changed while the node was away, or became private
	go n.publishFollowsLoop()
	go n.watchNodes(watchFrom)
	go n.announce()
	go n.rediscover()
	go n.antiEntropy()
	if n.cfg.Promiscuous {
		n.wg.Add(1)
		go n.followUnknown()
	}
	for range syncWorkers {
		go n.syncWorker()
	}
	return nil
}

// follow joins a tracker's topic, logging (not failing) when the node is
// at its limit.
func (n *Node) follow(t topics.TrackerID) {
	if err := n.net.Follow(t); err != nil {
		n.cfg.Logger.Warn("not following tracker", "tracker", t.String(), "err", err)
	}
}

// rotated reports whether the node's network key is not its inception key
// (it rotated): discovery records are signed by their tracker's owner key,
// which version 1 of the protocol checks statelessly, so a rotated node
// announces none (peers would reject them); its followers, sync and the
// DHT still reach its trackers.
func (n *Node) rotated() bool {
	raw, err := topics.RawPublicKey(n.ID.Key.GetPublic())
	return err != nil || !bytes.Equal(raw, n.ID.RawKey)
}

// Addrs returns the node's libp2p addresses.
func (n *Node) Addrs() []string { return n.net.Addrs() }

// NATSAddr returns the embedded NATS server's HOST:PORT ("" when off).
func (n *Node) NATSAddr() string {
	if n.nats == nil {
		return ""
	}
	return n.nats.Addr()
}

// HTTPAddr returns the HTTP API's HOST:PORT ("" when off).
func (n *Node) HTTPAddr() string {
	if n.http == nil {
		return ""
	}
	return n.http.Addr()
}

// GossipAddr returns memberlist's HOST:PORT ("" when off).
func (n *Node) GossipAddr() string { return n.net.GossipAddr() }

// ControlPath returns where the control channel listens.
func (n *Node) ControlPath() string { return n.ctl.Path() }

// Peers returns how many libp2p peers the node is connected to.
func (n *Node) Peers() int { return len(n.net.Peers()) }

// TopicPeers returns how many peers the node knows on a tracker's topic.
func (n *Node) TopicPeers(t topics.TrackerID) int { return n.net.TopicPeers(t) }

// Following returns the trackers whose topics the node has joined.
func (n *Node) Following() []topics.TrackerID { return n.net.Following() }

// WaitReady waits, at most ReadyTimeout, until the node is connected to the
// members it joined and has exchanged subscriptions with them: when it
// returns, a message published to a followed tracker reaches this node.
// A promiscuous node also waits for the discovery records its peers send.
func (n *Node) WaitReady(ctx context.Context) error {
	defer n.readyOnce.Do(func() {
		close(n.ready)
		for _, t := range n.follows.Trackers() {
			n.scheduleSync(t) // catch up on what happened while away
		}
	})
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ReadyTimeout)
	defer cancel()
	wait := func(cond func() bool) bool {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for !cond() {
			select {
			case <-ctx.Done():
				return false
			case <-t.C:
			}
		}
		return true
	}
	if len(n.cfg.Join) == 0 && len(n.cfg.Bootstrap) == 0 && len(n.net.Members()) == 0 {
		n.closeOwn()
		return nil // alone, by design
	}
	if !wait(func() bool { return n.Peers() > 0 && n.net.DiscoveryPeers() > 0 }) {
		n.cfg.Logger.Warn("no peer reachable yet; running alone until one is")
		n.closeOwn()
		return nil
	}
	n.syncOwn(ctx)
	if n.cfg.Promiscuous {
		// Learn every tracker the peers hold, not only live ones.
		for _, p := range n.net.SyncPeers() {
			n.compareWith(ctx, p)
		}
	}
	wait(func() bool {
		for _, t := range n.follows.Trackers() {
			if n.net.TopicPeers(t) == 0 {
				return false
			}
		}
		return true
	})
	return nil
}

// Follow adds trackers and nodes to the node's follows, joins their topics
// and fetches their history from peers.
func (n *Node) Follow(_ context.Context, fs datadir.FollowSet) error {
	for _, id := range fs.Nodes {
		if _, err := topics.NodeKey(id); err != nil {
			return err
		}
	}
	if err := n.follows.Change(fs, datadir.FollowSet{}); err != nil {
		return err
	}
	n.followsChanged()
	var errs []error
	for _, t := range fs.Trackers {
		errs = append(errs, n.join(t))
	}
	for _, id := range fs.Nodes {
		errs = append(errs, n.followNode(id))
	}
	return errors.Join(errs...)
}

// join joins a tracker's topic and schedules a sync of its history.
func (n *Node) join(t topics.TrackerID) error {
	if err := n.net.Follow(t); err != nil {
		return err
	}
	n.scheduleSync(t)
	return nil
}

// Unfollow removes trackers and nodes from the node's follows and leaves
// the topics no longer followed, except its own.
func (n *Node) Unfollow(_ context.Context, fs datadir.FollowSet) error {
	if err := n.follows.Change(datadir.FollowSet{}, fs); err != nil {
		return err
	}
	n.followsChanged()
	n.unfollowNodes(fs.Nodes)
	var errs []error
	for _, t := range fs.Trackers {
		if !n.Followed(t) && !t.OwnedBy(n.ID.RawKey) {
			errs = append(errs, n.net.Unfollow(t))
		}
	}
	return errors.Join(errs...)
}

// announce sends this node's own entries to the network, in log order,
// starting after the last one announced (so what was appended offline goes
// out when the node runs), and marks their trackers for discovery.
func (n *Node) announce() {
	defer n.wg.Done()
	// Wait for peers first: what was appended offline would otherwise go
	// to nobody. Without a WaitReady, go after ReadyTimeout.
	select {
	case <-n.ready:
	case <-time.After(n.cfg.ReadyTimeout):
	case <-n.ctx.Done():
		return
	}
	from, err := datadir.ReadAnnounced(n.Path)
	if err != nil {
		n.cfg.Logger.Error("announced cursor unreadable; announcing everything again", "err", err)
	}
	r := n.Log.NewReader(from)
	saved := from
	newest := make(map[topics.TrackerID]uint64) // own chains' newest seq, as last read
	for {
		e, err := r.Next(n.ctx)
		if err != nil {
			if r.Cursor() != saved {
				datadir.WriteAnnounced(n.Path, r.Cursor())
			}
			return
		}
		if e.Author != n.ID.ID {
			continue
		}
		n.follow(e.Tracker) // a tracker created since start, or offline
		if e.Seq >= newest[e.Tracker] {
			newest[e.Tracker] = n.newestOwn(e.Tracker)
		}
		if e.Seq+liveTail > newest[e.Tracker] {
			var a *topics.Announcement
			if a, err = n.Log.Announcement(e.Cursor); err == nil {
				err = n.net.Publish(n.ctx, a)
			}
		}
		if err != nil && n.ctx.Err() == nil {
			n.cfg.Logger.Warn("announce failed", "cursor", e.Cursor, "err", err)
		}
		n.markDirty(e.Tracker)
		if r.Cursor()-saved >= 64 || r.Cursor() == n.Log.Last() {
			if err := datadir.WriteAnnounced(n.Path, r.Cursor()); err != nil {
				n.cfg.Logger.Warn("could not save announced cursor", "err", err)
			}
			saved = r.Cursor()
		}
	}
}

// liveTail is how many of an own chain's newest entries go out live, at
// most, when the node announces a backlog (what was published while no node
// ran, or a bulk publish): the older ones are left to its peers, which fetch
// them by sync (batched, compressed, verified in batches) as soon as the
// first live one shows them the gap. GossipSub keeps what a node sends for
// its seen-cache and scoring window (two minutes): a long backlog sent live
// would hold memory in proportion to its length, and overrun the peers'
// queues.
const liveTail = 256

// newestOwn returns the highest seq of this node's chain on tracker t.
func (n *Node) newestOwn(t topics.TrackerID) uint64 {
	hs, err := n.Log.TrackerHeads(t)
	if err != nil {
		return 0 // every entry goes out live
	}
	for _, h := range hs {
		if h.Author == n.ID.ID {
			return h.Max
		}
	}
	return 0
}

func (n *Node) markDirty(t topics.TrackerID) {
	n.mu.Lock()
	n.dirty[t] = struct{}{}
	n.mu.Unlock()
	select {
	case n.pokeDis <- struct{}{}:
	default:
	}
}

// discoveryDebounce gathers changes before records go out: a burst of
// publishes costs one record per tracker. peerCheckEvery is how often the
// node looks for new peers on the discovery topic, to tell them its
// trackers. discoveriesSaveEvery is how often the listening-mode list is
// saved (and when the node stops).
const (
	discoveryDebounce    = 250 * time.Millisecond
	peerCheckEvery       = 250 * time.Millisecond
	discoveriesSaveEvery = 30 * time.Second
)

// rediscover announces discovery records: for trackers that changed, for
// all own trackers when a new peer joins the discovery topic, and for all
// of them every DiscoveryInterval.
func (n *Node) rediscover() {
	defer n.wg.Done()
	every := time.NewTicker(n.cfg.DiscoveryInterval)
	defer every.Stop()
	check := time.NewTicker(peerCheckEvery)
	defer check.Stop()
	save := time.NewTicker(discoveriesSaveEvery)
	defer save.Stop()
	lastPeers := 0
	for {
		all := false
		select {
		case <-n.ctx.Done():
			return
		case <-save.C:
			if err := n.disc.Save(); err != nil {
				n.cfg.Logger.Warn("saving the discovered trackers", "err", err)
			}
			continue
		case <-n.pokeDis:
		case <-every.C:
			all = true
		case <-check.C:
			p := n.net.DiscoveryPeers()
			all = p > lastPeers // someone new to tell
			lastPeers = p
			if !all {
				continue
			}
		}
		select {
		case <-time.After(discoveryDebounce):
		case <-n.ctx.Done():
			return
		}
		n.mu.Lock()
		dirty := n.dirty
		n.dirty = make(map[topics.TrackerID]struct{})
		n.mu.Unlock()
		if all {
			own, err := n.OwnTrackers()
			if err != nil {
				n.cfg.Logger.Warn("listing own trackers", "err", err)
			}
			for _, t := range append(own, n.ID.NodeTracker()) {
				dirty[t] = struct{}{}
			}
		}
		for t := range dirty {
			if err := n.announceTracker(t); err != nil && n.ctx.Err() == nil {
				n.cfg.Logger.Warn("discovery record not sent", "tracker", t.String(), "err", err)
			}
		}
	}
}

// announceTracker sends the discovery record of one of this node's trackers.
func (n *Node) announceTracker(t topics.TrackerID) error {
	if !t.OwnedBy(n.ID.RawKey) || n.rotated() {
		return nil
	}
	st, err := n.Log.Tracker(t)
	if errors.Is(err, feed.ErrNotFound) {
		return nil // nothing announced on it yet
	}
	if err != nil {
		return err
	}
	// The record's title is the tracker's title, or else its name.
	d := &topics.Discovery{Tracker: t, Title: st.Name, Time: topics.FormatTime(time.Now())}
	if info, err := n.trackerInfo(st); err == nil && info != nil && info.Title != "" {
		d.Title = info.Title
	}
	if hs, err := n.Log.TrackerHeads(t); err == nil {
		for _, h := range hs {
			if h.Author == n.ID.ID {
				d.HeadSeq, d.HeadID = h.Seq, h.ID
			}
		}
	}
	if d.HeadSeq == 0 {
		return nil // nothing to announce yet
	}
	return n.net.Announce(n.ctx, d)
}

// discovered learns a tracker from a discovery record: it goes on the
// listening-mode list, and a promiscuous node follows it.
func (n *Node) discovered(d topics.Discovery) {
	n.disc.Seen(d, time.Now())
	if n.cfg.Promiscuous && !n.Followed(d.Tracker) {
		n.followDiscovered(d)
	}
}

// Discovered returns the listening-mode list: the trackers discovered and
// not followed, with their owners' levels.
func (n *Node) Discovered(context.Context) ([]view.Discovered, error) {
	return datadir.ViewDiscovered(n.disc.List(n.Followed), n.book), nil
}

// Dismiss takes trackers or nodes off the listening-mode list.
func (n *Node) Dismiss(_ context.Context, ids []string) error {
	if err := datadir.CheckDismiss(ids); err != nil {
		return err
	}
	n.disc.Dismiss(ids, time.Now())
	return n.disc.Save()
}

// Leave stops the node gracefully: it stops serving the control channel,
// lets the APIs answer what they were asked and the plugins receive what
// the log holds, tells the other members it is leaving, and closes the data
// dir, waiting at most until ctx is done for each. Close after Leave does
// nothing.
func (n *Node) Leave(ctx context.Context) error {
	return n.stop(ctx, true)
}

// Close stops the node at once, in the reverse order of New, without
// telling the other members. It is safe to call twice.
func (n *Node) Close() error {
	return n.stop(context.Background(), false)
}

// stop runs once: it ends the control channel, the front ends, the loops,
// the network and the data dir; gracefully within ctx, or at once.
func (n *Node) stop(ctx context.Context, graceful bool) error {
	n.closeOnce.Do(func() {
		var errs []error
		if n.ctl != nil {
			errs = append(errs, n.ctl.Close())
		}
		if n.http != nil {
			errs = append(errs, leaveOrClose(ctx, graceful, n.http))
		}
		if n.nats != nil {
			errs = append(errs, leaveOrClose(ctx, graceful, n.nats))
		}
		n.cancel()
		n.wg.Wait()
		if n.index != nil {
			errs = append(errs, n.index.Close())
		}
		if n.disc != nil {
			errs = append(errs, n.disc.Save())
		}
		if n.net != nil {
			errs = append(errs, leaveOrClose(ctx, graceful, n.net))
		}
		n.closeErr = errors.Join(append(errs, n.Dir.Close())...)
	})
	return n.closeErr
}

// leaveOrClose stops a part gracefully within ctx, or at once.
func leaveOrClose(ctx context.Context, graceful bool, p interface {
	Leave(context.Context) error
	Close() error
}) error {
	if graceful {
		return p.Leave(ctx)
	}
	return p.Close()
}

// String describes the node for the ready line.
func (n *Node) String() string {
	return fmt.Sprintf("node %s peers %d following %d reachability %s", n.ID.ID, n.Peers(), len(n.Following()), n.net.Reachability())
}

// Followed reports whether the node follows a tracker, itself or through
// a followed node.
func (n *Node) Followed(t topics.TrackerID) bool {
	if n.follows.Has(t) {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.viaNodes[t]
	_, trusted := n.viaTrust[t]
	return ok || trusted
}

// Run runs a node until ctx is done, as the commands do: it prints the
// node's addresses on w, then, once ready, the line scripts wait for
// ("ready: node ID peers N following M"). When whileReady is not nil, Run
// calls it once the node is ready and stops when it returns. The node is
// shut down gracefully before Run returns.
func Run(ctx context.Context, cfg Config, w io.Writer, whileReady func(context.Context, *Node) error) (err error) {
	n, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = errors.Join(err, n.Leave(sctx))
	}()
	for _, a := range n.Addrs() {
		fmt.Fprintf(w, "listen %s\n", a)
	}
	if g := n.GossipAddr(); g != "" {
		fmt.Fprintf(w, "gossip %s\n", g)
	}
	fmt.Fprintf(w, "control %s\n", n.ControlPath())
	if a := n.NATSAddr(); a != "" {
		fmt.Fprintf(w, "nats nats://%s\n", a)
	}
	if a := n.HTTPAddr(); a != "" {
		fmt.Fprintf(w, "http http://%s\n", a)
	}
	if err := n.WaitReady(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "ready: %s\n", n)
	if whileReady != nil {
		return whileReady(ctx, n)
	}
	<-ctx.Done()
	return nil
}
