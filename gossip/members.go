package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/record"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/time/rate"
)

// Membership tuning.
const (
	maxRecordAddrs  = 4                // addresses in a member's peer record
	dialRate        = 10               // dials per second at most
	dialTimeout     = 10 * time.Second // per dial
	reconnectEvery  = 5 * time.Second  // how often unconnected members are dialled again
	savePeersEvery  = 30 * time.Second
	reconnectFor    = 24 * time.Hour // how long a dead member is retried, as serf does
	reconnectBatch  = 3              // dead members retried per round
	maxSavedPeers   = 64
	maxMemberEvents = 64 // kept for status
)

// Member is what the node knows of another member.
type Member struct {
	ID         string // node ID
	GossipAddr string // HOST:PORT
	State      string // alive, suspect, dead, left
	Since      time.Time
}

// MemberEvent is a membership change the node noticed.
type MemberEvent struct {
	Time time.Time
	ID   string // node ID
	Kind string // join, leave, death
}

// members runs memberlist: it advertises this node's signed peer record and
// dials the members it learns of.
type members struct {
	n    *Node
	ml   *memberlist.Memberlist
	tr   *transport
	meta []byte
	dial chan peer.ID
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once   // shutdown
	gone atomic.Bool // shut down

	// Memberlist does not tell a member that left from one that died, so
	// a leaving node says so first, in a broadcast of its own.
	bq *memberlist.TransmitLimitedQueue

	mu      sync.Mutex
	known   map[peer.ID]*Member
	leaving map[string]bool // members that announced they are leaving
	events  []MemberEvent
}

// leaveNotice prefixes the broadcast a leaving node sends: "L" + its name.
const leaveNotice = 'L'

// leaveBroadcast is a memberlist broadcast of a leave notice.
type leaveBroadcast []byte

func (b leaveBroadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(leaveBroadcast)
	return ok && bytes.Equal(b, ob)
}
func (b leaveBroadcast) Message() []byte { return b }
func (b leaveBroadcast) Finished()       {}

var (
	_ memberlist.Delegate      = (*members)(nil)
	_ memberlist.EventDelegate = (*members)(nil)
)

func newMembers(n *Node) *members {
	return &members{
		n:       n,
		dial:    make(chan peer.ID, 1024),
		stop:    make(chan struct{}),
		known:   make(map[peer.ID]*Member),
		leaving: make(map[string]bool),
	}
}

func (m *members) start(ctx context.Context) error {
	host, port, _ := splitHostPort(m.n.cfg.GossipAddr)
	meta, err := m.peerRecord()
	if err != nil {
		return err
	}
	m.meta = meta
	conf := memberlist.DefaultLANConfig()
	conf.Name = m.n.host.ID().String()
	conf.BindAddr, conf.BindPort = host, port
	conf.AdvertisePort = port
	conf.ProbeInterval = m.n.cfg.ProbeInterval
	conf.ProbeTimeout = min(conf.ProbeTimeout, m.n.cfg.ProbeInterval/2)
	conf.GossipInterval = m.gossipInterval()
	conf.Delegate, conf.Events = m, m
	conf.Logger = log.New(logWriter{m.n.cfg.Logger.With("component", "memberlist")}, "", 0)
	if keys := m.n.cfg.Keyring; len(keys) > 0 {
		kr, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			return fmt.Errorf("gossip: keyring: %w", err)
		}
		conf.Keyring = kr
	}
	if m.tr, err = newTransport(host, port, conf.Logger); err != nil {
		return fmt.Errorf("gossip: memberlist on %s: %w", m.n.cfg.GossipAddr, err)
	}
	conf.Transport = m.tr
	if port == 0 {
		conf.BindPort = m.tr.GetAutoBindPort()
		conf.AdvertisePort = conf.BindPort
	}
	// memberlist calls GetBroadcasts and NotifyMsg as soon as Create has
	// its listeners up, before it returns: the queue must exist first.
	var created atomic.Pointer[memberlist.Memberlist]
	m.bq = &memberlist.TransmitLimitedQueue{RetransmitMult: conf.RetransmitMult, NumNodes: func() int {
		if ml := created.Load(); ml != nil {
			return ml.NumMembers()
		}
		return 1
	}}
	m.ml, err = memberlist.Create(conf)
	if err != nil {
		return fmt.Errorf("gossip: memberlist on %s: %w", m.n.cfg.GossipAddr, err)
	}
	created.Store(m.ml)
	m.wg.Add(2)
	go m.dialer()
	go m.maintain()

	join := slices.Clone(m.n.cfg.Join)
	for _, a := range m.readPeers() {
		if !slices.Contains(join, a) && a != m.addr() {
			join = append(join, a)
		}
	}
	if len(join) == 0 {
		return nil
	}
	n, err := m.join(ctx, join)
	if err != nil {
		return fmt.Errorf("gossip: joining members: %w", err)
	}
	if n == 0 {
		m.n.cfg.Logger.Warn("could not join any member; running alone until found", "tried", len(join))
	}
	return nil
}

// join tries every address at once and returns once one has answered (with
// the members it brought) or all have failed (0), or with ctx's error once
// ctx is done. memberlist's own Join tries them one after the other, each
// for up to its TCP timeout (10 s), so a list of saved peers that no longer
// answer held a start for minutes. The attempts still under way go on in
// the background (memberlist's Join takes no ctx); shutdown ends them.
func (m *members) join(ctx context.Context, addrs []string) (int, error) {
	results := make(chan int, len(addrs))
	for _, a := range addrs {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			n, err := m.ml.Join([]string{a})
			if err != nil {
				m.n.cfg.Logger.Debug("join", "addr", a, "err", err)
			}
			results <- n
		}()
	}
	for range addrs {
		select {
		case n := <-results:
			if n > 0 {
				return n, nil
			}
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return 0, nil
}

// peerRecord returns this node's signed libp2p peer record with at most
// maxRecordAddrs listen addresses, fitting memberlist's metadata limit.
func (m *members) peerRecord() ([]byte, error) {
	addrs := m.n.hostAddrs()
	if len(addrs) > maxRecordAddrs {
		// Prefer addresses others can reach: not loopback, when there are some.
		var public []ma.Multiaddr
		for _, a := range addrs {
			if ip, err := addrIP(a); err == nil && !ip.IsLoopback() {
				public = append(public, a)
			}
		}
		if len(public) > 0 {
			addrs = public
		}
		addrs = addrs[:min(len(addrs), maxRecordAddrs)]
	}
	for ; ; addrs = addrs[:len(addrs)-1] {
		rec := peer.PeerRecordFromAddrInfo(peer.AddrInfo{ID: m.n.host.ID(), Addrs: addrs})
		env, err := record.Seal(rec, m.n.cfg.Key)
		if err != nil {
			return nil, err
		}
		b, err := env.Marshal()
		if err != nil {
			return nil, err
		}
		if len(b) <= memberlist.MetaMaxSize || len(addrs) == 0 {
			return b, nil
		}
	}
}

func addrIP(a ma.Multiaddr) (net.IP, error) {
	for _, code := range []int{ma.P_IP4, ma.P_IP6} {
		if v, err := a.ValueForProtocol(code); err == nil {
			return net.ParseIP(v), nil
		}
	}
	return nil, errors.New("no IP")
}

// addr returns memberlist's bound HOST:PORT.
func (m *members) addr() string {
	if m.ml == nil {
		return ""
	}
	ln := m.ml.LocalNode()
	return net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
}

func (m *members) live() int { return max(m.ml.NumMembers()-1, 0) }

// NodeMeta implements memberlist.Delegate: the signed peer record.
func (m *members) NodeMeta(limit int) []byte {
	if len(m.meta) > limit {
		return nil
	}
	return m.meta
}

// NotifyMsg implements memberlist.Delegate: leave notices, which are
// relayed once, as serf relays its events, so that every member hears them.
func (m *members) NotifyMsg(b []byte) {
	if len(b) < 2 || b[0] != leaveNotice {
		return
	}
	name := string(b[1:])
	m.mu.Lock()
	seen := m.leaving[name]
	m.leaving[name] = true
	m.mu.Unlock()
	if !seen && name != m.n.host.ID().String() {
		m.bq.QueueBroadcast(leaveBroadcast(bytes.Clone(b)))
	}
}

// GetBroadcasts implements memberlist.Delegate.
func (m *members) GetBroadcasts(overhead, limit int) [][]byte {
	return m.bq.GetBroadcasts(overhead, limit)
}

func (m *members) LocalState(bool) []byte        { return nil }
func (m *members) MergeRemoteState([]byte, bool) {}

// NotifyJoin implements memberlist.EventDelegate. Like every memberlist
// callback it must not block.
func (m *members) NotifyJoin(node *memberlist.Node) { m.seen(node, "join") }

// NotifyUpdate implements memberlist.EventDelegate.
func (m *members) NotifyUpdate(node *memberlist.Node) { m.seen(node, "") }

// NotifyLeave implements memberlist.EventDelegate: a member left, or was
// found dead by the failure detector.
func (m *members) NotifyLeave(node *memberlist.Node) {
	id, err := peer.Decode(node.Name)
	if err != nil || id == m.n.host.ID() {
		return
	}
	m.mu.Lock()
	left := m.leaving[node.Name]
	delete(m.leaving, node.Name)
	m.mu.Unlock()
	kind, state := "leave", "left"
	if left {
		m.n.stat.leaves.Add(1)
		m.n.cfg.Logger.Info("member left", "peer", node.Name)
	} else {
		kind, state = "death", "dead"
		m.n.stat.deaths.Add(1)
		m.n.cfg.Logger.Warn("member dead", "peer", node.Name, "addr", node.Address())
	}
	m.mu.Lock()
	if k := m.known[id]; k != nil {
		k.State, k.Since = state, time.Now()
	}
	m.record(id, kind)
	m.mu.Unlock()
}

// seen learns a member's peer record and queues a dial.
func (m *members) seen(node *memberlist.Node, event string) {
	if node.Name == m.n.host.ID().String() {
		return
	}
	id, addrs, err := openPeerRecord(node)
	if err != nil {
		m.n.cfg.Logger.Warn("member with a bad peer record", "member", node.Name, "err", err)
		return
	}
	m.n.host.Peerstore().AddAddrs(id, addrs, peerstore.RecentlyConnectedAddrTTL)
	m.mu.Lock()
	k := m.known[id]
	if k == nil {
		k = &Member{ID: id.String()}
		m.known[id] = k
	}
	k.GossipAddr, k.State, k.Since = node.Address(), "alive", time.Now()
	if event != "" {
		m.n.stat.joins.Add(1)
		m.record(id, event)
		m.n.cfg.Logger.Info("member joined", "peer", node.Name, "addr", node.Address())
	}
	m.mu.Unlock()
	select {
	case m.dial <- id:
	default: // the dialer is behind; maintain dials it later
	}
}

func (m *members) record(id peer.ID, kind string) {
	m.events = append(m.events, MemberEvent{Time: time.Now(), ID: id.String(), Kind: kind})
	if len(m.events) > maxMemberEvents {
		m.events = slices.Delete(m.events, 0, len(m.events)-maxMemberEvents)
	}
}

// openPeerRecord verifies a member's metadata: a peer record signed by the
// peer the member is named after.
func openPeerRecord(node *memberlist.Node) (peer.ID, []ma.Multiaddr, error) {
	name, err := peer.Decode(node.Name)
	if err != nil {
		return "", nil, fmt.Errorf("name is not a peer ID: %w", err)
	}
	env, rec, err := record.ConsumeEnvelope(node.Meta, peer.PeerRecordEnvelopeDomain)
	if err != nil {
		return "", nil, err
	}
	pr, ok := rec.(*peer.PeerRecord)
	if !ok {
		return "", nil, errors.New("not a peer record")
	}
	if pr.PeerID != name {
		return "", nil, fmt.Errorf("peer record of %s", pr.PeerID)
	}
	// The envelope proves who signed it, not that the signer is the peer
	// the record names.
	if signer, err := peer.IDFromPublicKey(env.PublicKey); err != nil || signer != name {
		return "", nil, fmt.Errorf("peer record of %s not signed by it", name)
	}
	if len(pr.Addrs) > maxRecordAddrs {
		pr.Addrs = pr.Addrs[:maxRecordAddrs]
	}
	return name, pr.Addrs, nil
}

// dialer connects to queued members, at a bounded rate and up to MaxPeers.
func (m *members) dialer() {
	defer m.wg.Done()
	lim := rate.NewLimiter(dialRate, dialRate)
	for {
		select {
		case id := <-m.dial:
			if m.n.host.Network().Connectedness(id) == network.Connected || len(m.n.host.Network().Peers()) >= m.n.cfg.MaxPeers {
				continue
			}
			if err := lim.Wait(m.tr.ctx); err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(m.tr.ctx, dialTimeout) // ends with the members
			err := m.n.host.Connect(ctx, peer.AddrInfo{ID: id})
			cancel()
			if err != nil {
				m.n.cfg.Logger.Debug("dial failed", "peer", id.String(), "err", err)
			}
		case <-m.stop:
			return
		}
	}
}

// maintain redials live members the node is not connected to and saves
// the known members now and then.
func (m *members) maintain() {
	defer m.wg.Done()
	redial := time.NewTicker(reconnectEvery)
	save := time.NewTicker(savePeersEvery)
	defer redial.Stop()
	defer save.Stop()
	for {
		select {
		case <-redial.C:
			var alive []peer.ID
			var dead []string
			m.mu.Lock()
			for id, k := range m.known {
				switch {
				case k.State == "alive":
					alive = append(alive, id)
				case k.State == "dead" && time.Since(k.Since) < reconnectFor:
					dead = append(dead, k.GossipAddr)
				}
			}
			m.mu.Unlock()
			for _, id := range alive {
				if m.n.host.Network().Connectedness(id) != network.Connected {
					select {
					case m.dial <- id:
					default:
					}
				}
			}
			m.reconnect(dead)
			m.forget(time.Now().Add(-reconnectFor))
		case <-save.C:
			m.savePeers()
		case <-m.stop:
			return
		}
	}
}

// forget drops the members dead or gone since before cutoff: they are no
// longer retried, and a long-running node's list would otherwise only grow.
func (m *members) forget(cutoff time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, k := range m.known {
		if k.State != "alive" && k.Since.Before(cutoff) {
			delete(m.known, id)
		}
	}
}

// reconnect tries to rejoin a few members found dead: after a partition
// heals, memberlist alone would never look for them again (serf's
// reconnector does the same).
func (m *members) reconnect(dead []string) {
	if len(dead) == 0 {
		return
	}
	rand.Shuffle(len(dead), func(i, j int) { dead[i], dead[j] = dead[j], dead[i] })
	if n, _ := m.join(m.tr.ctx, dead[:min(len(dead), reconnectBatch)]); n > 0 {
		m.n.cfg.Logger.Info("rejoined members after a failure", "members", n)
	}
}

// Members returns what the node knows of the other members.
func (m *members) Members() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Member, 0, len(m.known))
	for _, k := range m.known {
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Events returns the recent membership events, oldest first.
func (m *members) Events() []MemberEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events)
}

// leaveMembership leaves memberlist for good, in the background: the node
// was found private.
func (n *Node) leaveMembership() {
	if n.mem == nil {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
		defer cancel()
		n.cfg.Logger.Info("private node: leaving memberlist (members would probe it as dead); peers come from bootstrap peers and the DHT")
		if err := n.mem.leave(ctx); err != nil {
			n.cfg.Logger.Debug("leave", "err", err)
		}
		n.mem.shutdown()
	}()
}

// Members returns what the node knows of the other members (none when
// membership is off).
func (n *Node) Members() []Member {
	if n.mem == nil {
		return nil
	}
	return n.mem.Members()
}

// MemberEvents returns the recent membership events, oldest first.
func (n *Node) MemberEvents() []MemberEvent {
	if n.mem == nil {
		return nil
	}
	return n.mem.Events()
}

func (m *members) readPeers() []string {
	if m.n.cfg.Peers == nil {
		return nil
	}
	addrs, err := m.n.cfg.Peers.LoadPeers()
	if err != nil {
		m.n.cfg.Logger.Warn("known peers unreadable; ignoring them", "err", err)
		return nil
	}
	return addrs
}

// savePeers keeps the members last seen alive.
func (m *members) savePeers() {
	if m.n.cfg.Peers == nil {
		return
	}
	var addrs []string
	for _, mem := range m.Members() {
		if mem.State == "alive" && len(addrs) < maxSavedPeers {
			addrs = append(addrs, mem.GossipAddr)
		}
	}
	if len(addrs) == 0 {
		return // keep what an earlier run saw rather than forget it
	}
	if err := m.n.cfg.Peers.SavePeers(addrs); err != nil {
		m.n.cfg.Logger.Warn("could not save known peers", "err", err)
	}
}

// leave announces this node's departure, waiting at most until ctx is done.
func (m *members) leave(ctx context.Context) error {
	if m.gone.Load() {
		return nil // left already
	}
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	m.savePeers()
	// Say it is a leave, then give the notice time to go out.
	m.bq.QueueBroadcast(leaveBroadcast(append([]byte{leaveNotice}, m.n.host.ID().String()...)))
	start := time.Now()
	for m.bq.NumQueued() > 0 && time.Since(start) < min(timeout/2, 20*m.gossipInterval()) {
		select {
		case <-time.After(m.gossipInterval()):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select { // and for the relays to relay it
	case <-time.After(2 * m.gossipInterval()):
	case <-ctx.Done():
		return ctx.Err()
	}
	return m.ml.Leave(max(timeout-time.Since(start), m.gossipInterval()))
}

func (m *members) gossipInterval() time.Duration {
	return min(200*time.Millisecond, m.n.cfg.ProbeInterval/5)
}

// shutdown stops memberlist and the member goroutines. It is safe after a
// start that failed part way, and more than once.
func (m *members) shutdown() error {
	var err error
	m.once.Do(func() { err = m.stop1(); m.gone.Store(true) })
	return err
}

func (m *members) stop1() error {
	if m.ml == nil {
		if m.tr != nil {
			m.tr.stop()
			return m.tr.Shutdown()
		}
		return nil
	}
	m.savePeers()
	close(m.stop)
	m.tr.stop() // joins and dials under way end now
	m.wg.Wait()
	return m.ml.Shutdown()
}

// logWriter sends memberlist's log lines ("[LEVEL] memberlist: …") to slog.
type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
		if rest, ok := bytes.CutPrefix([]byte(line), []byte(prefix)); ok {
			level, line = l, string(bytes.TrimSpace(rest))
			break
		}
	}
	w.l.Log(context.Background(), level, line)
	return len(p), nil
}
