// Package flags defines the flags the announcer and subscriber commands
// share and how every flag gets its value: from the command line, else from
// the environment (TTN_ and the flag name in capitals, dashes as
// underscores: --max-trackers is TTN_MAX_TRACKERS), else from the
// configuration file (--config, by default DIR/config: one "flag value" per
// line, # comments).
package flags

import (
	"encoding/base64"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/pnet"

	"github.com/peterbourgon/ff/v3"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/gossip"
	"github.com/thingtracker/ttn/httpapi"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/node"
	"github.com/thingtracker/ttn/topics"
)

// Common holds the flags every command has.
type Common struct {
	Data   string // the data dir
	Config string // the configuration file

	configSet bool // --config or TTN_CONFIG was given
}

// DefaultDataDir is where the OS keeps an application's data for the user
// (osDataDir, one file per OS): $XDG_DATA_HOME/ttn or ~/.local/share/ttn on
// Linux and other Unix systems (~/.ttn where it exists, the default before),
// ~/Library/Application Support/TTN on macOS, %LocalAppData%\TTN on
// Windows. It is ./ttn-data when the OS names no such place (no home
// directory).
func DefaultDataDir() string {
	if dir, err := osDataDir(); err == nil {
		return dir
	}
	return "ttn-data"
}

// Register adds --data and --config to fs.
func (c *Common) Register(fs *flag.FlagSet) {
	c.Data = DefaultDataDir()
	c.Config = filepath.Join(c.Data, "config")
	fs.Var(dataValue{c}, "data", "data `DIR`: identity, log, configuration")
	fs.Var(configValue{c}, "config", "configuration `FILE` (default DIR/config)")
}

// Options returns how ff resolves a command's flags.
func (c *Common) Options() []ff.Option {
	return []ff.Option{
		ff.WithEnvVarPrefix("TTN"),
		ff.WithEnvVarSplit(","),
		ff.WithConfigFileVia(&c.Config),
		ff.WithConfigFileParser(ff.PlainParser),
		ff.WithAllowMissingConfigFile(true),
		ff.WithIgnoreUndefined(true),
	}
}

// dataValue sets the data dir and, unless a configuration file was named,
// the configuration file in it.
type dataValue struct{ c *Common }

func (v dataValue) String() string {
	if v.c == nil {
		return ""
	}
	return v.c.Data
}

func (v dataValue) Set(s string) error {
	v.c.Data = s
	if !v.c.configSet {
		v.c.Config = filepath.Join(s, "config")
	}
	return nil
}

type configValue struct{ c *Common }

func (v configValue) String() string {
	if v.c == nil {
		return ""
	}
	return v.c.Config
}

func (v configValue) Set(s string) error {
	v.c.Config, v.c.configSet = s, true
	return nil
}

// List is a repeatable flag (--join A --join B); from the environment or
// the configuration file, values may be separated by commas.
type List []string

func (l *List) String() string { return strings.Join(*l, ",") }

// Set adds a value.
func (l *List) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// FollowList is a repeatable flag of tracker IDs and node IDs (also
// comma-separated).
type FollowList struct{ IDs datadir.FollowSet }

func (l *FollowList) String() string { return "" } // no default to show

// Set adds IDs.
func (l *FollowList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if t, err := topics.ParseTrackerID(s); err == nil {
			l.IDs.Trackers = append(l.IDs.Trackers, t)
			continue
		}
		if _, err := topics.NodeKey(s); err == nil {
			l.IDs.Nodes = append(l.IDs.Nodes, s)
			continue
		}
		return fmt.Errorf("%q: want a tracker ID (26 characters) or a node ID (12D3KooW…)", s)
	}
	return nil
}

// Node holds the flags of a running node (announcer run, subscriber).
type Node struct {
	Follow            FollowList
	Listen            List
	GossipAddr        string
	Join              List
	Bootstrap         List
	KeyringFile       string
	PSKFile           string
	Reachability      string
	RelayService      bool
	NATPortMap        bool
	MaxTrackers       int
	MaxPeers          int
	DiscoveryInterval time.Duration
	AntiEntropy       time.Duration
	MinFree           int64
	QuotaAuthor       int64
	QuotaTracker      int64
	LogLevel          string
	Heartbeat         time.Duration
	ProbeInterval     time.Duration

	NATS       string
	NATSToken  string
	NATSConfig string
	NATSLeaf   List
	HTTP       string
	Pages      string

	TrustDepth     int
	PrivateFollows bool
	UnknownShare   float64
	UnknownRate    float64
	UnknownBurst   int
	UnknownQuota   int64
	WebRate        float64
	WebBurst       int
	WebQuota       int64
}

// Register adds the node flags to fs.
func (f *Node) Register(fs *flag.FlagSet) {
	fs.Var(&f.Follow, "follow", "follow tracker `ID`, or node ID (its node tracker and every tracker it lists, now and later); kept in the dir; repeatable")
	fs.Var(&f.Listen, "listen", "libp2p listen `MULTIADDR`, repeatable (default "+strings.Join(gossip.DefaultConfig().Listen, " and ")+"; port 0: ephemeral)")
	fs.StringVar(&f.GossipAddr, "gossip-addr", gossip.DefaultConfig().GossipAddr, "memberlist `HOST:PORT` (port 0: ephemeral; off: no membership)")
	fs.Var(&f.Join, "join", "memberlist `HOST:PORT` of a member to join, repeatable")
	fs.Var(&f.Bootstrap, "bootstrap", "libp2p `MULTIADDR` with /p2p/ID of a peer to connect to directly, besides members (with --gossip-addr off, the only peers); repeatable")
	fs.StringVar(&f.KeyringFile, "keyring", "", "`FILE` of base64 memberlist keys (16, 24 or 32 bytes), one per line, the first encrypting; mode 0600. Only nodes with a key in common can join")
	fs.StringVar(&f.PSKFile, "psk", "", "libp2p private-network key `FILE` (the swarm.key format: /key/swarm/psk/1.0.0/, /base16/, 64 hex digits; mode 0600): only nodes with the same key connect; TCP only, QUIC is then off")
	fs.StringVar(&f.Reachability, "reachability", gossip.DefaultConfig().Reachability, "auto (AutoNAT decides), public (dialable from outside: member, DHT server, relay) or private (behind NAT: no memberlist, relay reservations, hole punching)")
	fs.BoolVar(&f.RelayService, "relay-service", true, "while public, relay for private nodes (circuit relay v2, within limits)")
	fs.BoolVar(&f.NATPortMap, "nat-portmap", true, "ask the home router for a port mapping (UPnP, NAT-PMP); never asked when listening on loopback only")
	fs.IntVar(&f.MaxTrackers, "max-trackers", gossip.DefaultConfig().MaxTrackers, fmt.Sprintf("most tracker topics to join (at most %d: GossipSub's subscription hello must fit its 512 KiB control limit)", gossip.MaxTrackersLimit))
	fs.IntVar(&f.MaxPeers, "max-peers", gossip.DefaultConfig().MaxPeers, "most libp2p connections; past it the least useful are closed, keeping peers on followed trackers, bootstrap peers and the trackers' owners")
	fs.DurationVar(&f.DiscoveryInterval, "discovery-interval", node.DefaultConfig().DiscoveryInterval, "how often own trackers' discovery records are re-announced")
	fs.DurationVar(&f.AntiEntropy, "anti-entropy-interval", node.DefaultConfig().AntiEntropyInterval, "how often followed chains are compared with a random peer's, to repair what was missed")
	fs.Int64Var(&f.MinFree, "min-free", feed.DefaultConfig().MinFree>>20, "`MiB` to leave free on the data dir's disk: below it the node stores nothing (live, synced or published) and says so, but goes on serving; 0: no check")
	fs.Int64Var(&f.QuotaAuthor, "quota-author", feed.DefaultConfig().AuthorQuota>>20, "`MiB` of announcements kept per author, all its trackers together; past it more are ignored; 0: no quota")
	fs.Int64Var(&f.QuotaTracker, "quota-tracker", feed.DefaultConfig().TrackerQuota>>20, "`MiB` of announcements kept per tracker; past it more are ignored; 0: no quota")
	fs.StringVar(&f.LogLevel, "log-level", "info", "debug, info, warn or error (messages go to stderr)")
	fs.StringVar(&f.NATS, "nats", natsapi.DefaultConfig().Addr, "embedded NATS server for plugins: `HOST:PORT` (0: an ephemeral port on 127.0.0.1; off: none)")
	fs.StringVar(&f.NATSToken, "nats-token", "", "`TOKEN` every NATS client must present; token holders may publish through the node (prefer TTN_NATS_TOKEN or the config file: a flag shows in ps)")
	fs.StringVar(&f.NATSConfig, "nats-config", "", "nats-server configuration `FILE` (mode 0600): users and permissions, leafnode remotes, limits")
	fs.Var(&f.NATSLeaf, "nats-leaf", "`URL` of a NATS cluster to join as a leafnode (nats://[user:pass@]HOST:PORT), repeatable")
	fs.StringVar(&f.HTTP, "http", httpapi.DefaultConfig().Addr, "HTTP API, live feed, metrics and pages: `HOST:PORT` (0: an ephemeral port on 127.0.0.1; off: none)")
	fs.StringVar(&f.Pages, "pages", "on", "the pages (live feed, trackers, Things, nodes, search, status) on the --http listener: on (their forms — follow, publish, trust, flag, block — only when it is loopback), readonly (no forms: pages published through a proxy) or off")
	fs.IntVar(&f.TrustDepth, "trust-depth", datadir.DefaultTrustDepth, "how many hops the web of trust reaches: 1 your own trust records only, 2 also your trusted nodes' introductions, 3 the whole rule")
	fs.BoolVar(&f.PrivateFollows, "private-follows", false, "keep what this node follows out of its node record (by default others can follow what it follows)")
	b := node.DefaultBudgets()
	fs.Float64Var(&f.UnknownShare, "unknown-share", node.DefaultConfig().UnknownShare, "share of --max-trackers a --promiscuous node gives trackers of unknown owners (0 to 1): a flood of fresh keys never takes the rest")
	fs.Float64Var(&f.UnknownRate, "unknown-rate", b.Unknown.Rate, "announcements per second taken from an unknown author")
	fs.IntVar(&f.UnknownBurst, "unknown-burst", b.Unknown.Burst, "announcements taken at once from an unknown author")
	fs.Int64Var(&f.UnknownQuota, "unknown-quota", b.Unknown.Quota>>20, "`MiB` of announcements kept per unknown author; 0: no quota")
	fs.Float64Var(&f.WebRate, "web-rate", b.Web.Rate, "announcements per second taken from a marginal or web author (trusted and verified ones get the network's defaults)")
	fs.IntVar(&f.WebBurst, "web-burst", b.Web.Burst, "announcements taken at once from a marginal or web author")
	fs.Int64Var(&f.WebQuota, "web-quota", b.Web.Quota>>20, "`MiB` of announcements kept per marginal or web author; 0: no quota")
	fs.DurationVar(&f.Heartbeat, "heartbeat", gossip.DefaultConfig().Heartbeat, "GossipSub heartbeat (advanced)")
	fs.DurationVar(&f.ProbeInterval, "probe-interval", gossip.DefaultConfig().ProbeInterval, "memberlist failure-detection interval (advanced)")
}

// mib turns a MiB flag into bytes for feed.Config, where 0 is none.
func mib(v int64) int64 {
	if v <= 0 {
		return -1
	}
	return v << 20
}

// Config returns the node configuration the flags describe for dir.
func (f *Node) Config(dir string) (node.Config, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.LogLevel)); err != nil {
		return node.Config{}, fmt.Errorf("--log-level %q: want debug, info, warn or error", f.LogLevel)
	}
	cfg := node.Config{
		Dir:                 dir,
		Follow:              f.Follow.IDs,
		Logger:              slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Listen:              f.Listen,
		GossipAddr:          f.GossipAddr,
		Join:                f.Join,
		Bootstrap:           f.Bootstrap,
		MaxTrackers:         f.MaxTrackers,
		MaxPeers:            f.MaxPeers,
		Reachability:        f.Reachability,
		NoRelayService:      !f.RelayService,
		NoNATPortMap:        !f.NATPortMap,
		DiscoveryInterval:   f.DiscoveryInterval,
		AntiEntropyInterval: f.AntiEntropy,
		MinFree:             mib(f.MinFree),
		AuthorQuota:         mib(f.QuotaAuthor),
		TrackerQuota:        mib(f.QuotaTracker),
		Heartbeat:           f.Heartbeat,
		ProbeInterval:       f.ProbeInterval,
		TrustDepth:          f.TrustDepth,
		PrivateFollows:      f.PrivateFollows,
		UnknownShare:        f.UnknownShare,
		Budgets: node.Budgets{
			Unknown: node.Budget{Rate: f.UnknownRate, Burst: f.UnknownBurst, Quota: mib(f.UnknownQuota)},
			Web:     node.Budget{Rate: f.WebRate, Burst: f.WebBurst, Quota: mib(f.WebQuota)},
		},
	}
	if f.UnknownShare <= 0 || f.UnknownShare > 1 {
		return node.Config{}, fmt.Errorf("--unknown-share %v: want a share above 0, at most 1", f.UnknownShare)
	}
	if f.TrustDepth < 1 {
		return node.Config{}, fmt.Errorf("--trust-depth %d: want 1 or more", f.TrustDepth)
	}
	for name, v := range map[string]float64{"unknown-rate": f.UnknownRate, "web-rate": f.WebRate, "unknown-burst": float64(f.UnknownBurst), "web-burst": float64(f.WebBurst)} {
		if v <= 0 {
			return node.Config{}, fmt.Errorf("--%s %v: want a number above 0", name, v)
		}
	}
	for name, v := range map[string]int64{"min-free": f.MinFree, "quota-author": f.QuotaAuthor, "quota-tracker": f.QuotaTracker, "unknown-quota": f.UnknownQuota, "web-quota": f.WebQuota} {
		if v < 0 || v > 1<<40 {
			return node.Config{}, fmt.Errorf("--%s %d: want a number of MiB (at most 2^40), or 0 for none", name, v)
		}
	}
	var err error
	if cfg.NATS, err = f.natsConfig(); err != nil {
		return node.Config{}, err
	}
	if f.HTTP != "off" {
		cfg.HTTP = &httpapi.Config{Addr: f.HTTP}
		switch f.Pages {
		case "on":
		case "readonly":
			cfg.ReadOnlyPages = true
		case "off":
			cfg.NoPages = true
		default:
			return node.Config{}, fmt.Errorf("--pages %q: want on, readonly or off", f.Pages)
		}
		if err := cfg.HTTP.Check(); err != nil {
			return node.Config{}, fmt.Errorf("--http: %w", err)
		}
	}
	if f.PSKFile != "" {
		if cfg.PSK, err = readPSK(f.PSKFile); err != nil {
			return node.Config{}, err
		}
	}
	if f.KeyringFile != "" {
		keys, err := readKeyring(f.KeyringFile)
		if err != nil {
			return node.Config{}, err
		}
		cfg.Keyring = keys
	}
	return cfg, nil
}

// natsConfig returns the embedded NATS server's configuration, nil when it
// is off.
func (f *Node) natsConfig() (*natsapi.Config, error) {
	if f.NATS == "off" && len(f.NATSLeaf) == 0 && f.NATSConfig == "" {
		return nil, nil
	}
	if f.NATSConfig != "" {
		if err := private("--nats-config", f.NATSConfig); err != nil {
			return nil, err
		}
	}
	c := natsapi.DefaultConfig()
	c.Addr, c.Token, c.ConfigFile, c.Leaf = f.NATS, f.NATSToken, f.NATSConfig, f.NATSLeaf
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("--nats: %w", err)
	}
	return &c, nil
}

// private checks that a file holding secrets exists and only its owner can
// read it.
func private(flag, path string) error {
	if err := datadir.CheckPrivate(path); err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	return nil
}

// readKeyring reads base64 keys, one per line; it refuses a file others can
// read.
func readKeyring(path string) ([][]byte, error) {
	if err := private("--keyring", path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--keyring: %w", err)
	}
	var keys [][]byte
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("--keyring %s line %d: not base64", path, i+1)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("--keyring %s: no keys", path)
	}
	return keys, nil
}

// readPSK reads a libp2p private-network key (the swarm.key format IPFS
// uses); it refuses a file others can read.
func readPSK(path string) ([]byte, error) {
	if err := private("--psk", path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--psk: %w", err)
	}
	defer f.Close()
	psk, err := pnet.DecodeV1PSK(f)
	if err != nil {
		return nil, fmt.Errorf("--psk %s: not a swarm key (/key/swarm/psk/1.0.0/, /base16/, 64 hex digits): %v", path, err)
	}
	return psk, nil
}
