package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/thingtracker/ttn/cmd/internal/flags"
	"github.com/thingtracker/ttn/cmd/internal/output"
	"github.com/thingtracker/ttn/control"
	"github.com/thingtracker/ttn/node"
	"github.com/thingtracker/ttn/view"
)

func runCmd() *ffcli.Command {
	var nf flags.Node
	return command("run", "announcer run [flags]", "Run the node: join the network, announce, relay, serve.",
		`Runs the node on the data dir (creating an identity if there is none): joins
the network (memberlist --join, and the members remembered from the last run),
follows its own trackers and those stored in the dir, announces what was
appended while it was not running, stores and relays what it receives,
serves the other commands on DIR/control.sock, and publishes every accepted
announcement to plugins on its NATS server (--nats; subjects
ttn.ann.<tracker>.<kind>, requests ttn.api.*: see the README).

It prints its addresses on stderr, then, once connected to the members it
joined, one line scripts can wait for:

  ready: node 12D3KooW… peers N following M reachability R

SIGINT or SIGTERM stop it cleanly (it tells the other members it leaves).`,
		nf.Register,
		func(ctx context.Context, c *flags.Common, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			cfg, err := nf.Config(c.Data)
			if err != nil {
				return flags.Usagef("%v", err)
			}
			return node.Run(ctx, cfg, os.Stderr, nil)
		})
}

func statusCmd() *ffcli.Command {
	var format string
	return command("status", "announcer status [--format text|json]", "Show the node: peers, follows, chains, log.",
		`Shows the node running on the data dir, or, when none runs, what the dir holds:
identity, peers and members, followed trackers, each chain's head (seq, gaps,
forks), and the log's size.`,
		func(fs *flag.FlagSet) {
			fs.StringVar(&format, "format", output.Text, "json or text")
		},
		func(ctx context.Context, c *flags.Common, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if err := output.CheckFormat(format); err != nil {
				return flags.Usagef("%v", err)
			}
			return withDir(c, func(d control.Operations) error {
				s, err := d.Status(ctx)
				if err != nil {
					return err
				}
				return show(format, s, printStatus)
			})
		})
}

func printStatus(s *view.Status) {
	w := tabwriter.NewWriter(os.Stdout, 0, 2, 2, ' ', 0)
	defer w.Flush()
	state := "not running (read from the data dir)"
	if s.Running {
		state = "running"
	}
	fmt.Fprintf(w, "node\t%s\n", s.Node)
	fmt.Fprintf(w, "fingerprint\t%s\n", s.Fingerprint)
	fmt.Fprintf(w, "recovery\t%s\n", recovery(s.Commitment))
	if s.Key != nil {
		fmt.Fprintf(w, "key\t%s\n", keyState(s.Key))
	}
	fmt.Fprintf(w, "state\t%s\n", state)
	if s.Running {
		fmt.Fprintf(w, "listen\t%s\n", strings.Join(s.Addrs, " "))
		fmt.Fprintf(w, "gossip\t%s\n", s.GossipAddr)
		fmt.Fprintf(w, "peers\t%d connected, %d members\n", s.Peers, len(s.Members))
		fmt.Fprintf(w, "reach\t%s; %d direct and %d relayed connections, %d relay reservations; hole punches %d won of %d; DHT %d peers\n",
			s.Net.Reachability, s.Net.DirectConns, s.Net.RelayedConns, s.Net.RelayReservations, s.Net.HolePunchesWon, s.Net.HolePunchesTried, s.Net.DHTPeers)
		for _, m := range s.Members {
			fmt.Fprintf(w, "  member\t%s %s %s since %s\n", m.ID, m.GossipAddr, m.State, m.Since.Format(time.RFC3339))
		}
		fmt.Fprintf(w, "membership\t%d joins, %d leaves, %d deaths\n", s.Net.Joins, s.Net.Leaves, s.Net.Deaths)
		fmt.Fprintf(w, "messages\t%d accepted, %d ignored (%d duplicates, %d over budget, %d of blocked or distrusted authors), %d rejected\n",
			s.Net.Accepted, s.Net.Ignored, s.Net.Duplicates, s.Net.OverBudget, s.Net.IgnoredAuthors, s.Net.Rejected)
		var levels []string
		for _, l := range []string{"verified", "trusted", "marginal", "web", "distrusted", "blocked"} {
			levels = append(levels, fmt.Sprintf("%d %s", s.Trust[l], l))
		}
		fmt.Fprintf(w, "trust\t%s\n", strings.Join(levels, ", "))
		fmt.Fprintf(w, "drops\t%d RPCs, %d before validation, %d subscriptions\n", s.Net.DroppedRPCs, s.Net.DroppedValidations, s.Net.DroppedSubscriptions)
		fmt.Fprintf(w, "known trackers\t%d (from discovery records)\n", s.Known)
		fmt.Fprintf(w, "sync\t%d fetches (%d failed), %d envelopes stored, %d served, %d bad peers, %d trackers pending\n",
			s.Sync.Fetches, s.Sync.FetchFailures, s.Sync.Stored, s.Sync.Served, s.Sync.Violations, s.SyncPending)
		if ix := s.Index; ix != nil {
			fmt.Fprintf(w, "search index\tat entry %d, %d behind the log\n", ix.Cursor, ix.Behind)
		}
	}
	fmt.Fprintf(w, "follows\t%d trackers, %d nodes\n", len(s.Follows.Trackers), len(s.Follows.Nodes))
	for _, t := range s.Follows.Trackers {
		fmt.Fprintf(w, "  follow\ttracker %s\n", t)
	}
	for _, n := range s.Follows.Nodes {
		fmt.Fprintf(w, "  follow\tnode %s\n", n)
	}
	fmt.Fprintf(w, "chains\t%d, %d gaps, %d forks\n", len(s.Heads), s.Gaps(), s.Forks())
	for _, h := range s.Heads {
		line := fmt.Sprintf("%s by %s: seq %d", h.Tracker, h.Author, h.Seq)
		if h.Max != h.Seq {
			line += fmt.Sprintf(" (max %d)", h.Max)
		}
		for _, g := range h.Gaps {
			line += fmt.Sprintf(" gap %d-%d", g.From, g.To)
		}
		if h.Fork != nil {
			line += fmt.Sprintf(" FORK at %d (%s): frozen", h.Fork.Seq, h.Fork.Reason)
		}
		fmt.Fprintf(w, "  chain\t%s\n", line)
	}
	fmt.Fprintf(w, "log\t%d entries, %d bytes on disk\n", s.Log.Entries, s.Log.DiskBytes)
	if s.Log.DiskFull {
		fmt.Fprintf(w, "disk\tFULL: %.1f MiB free, under --min-free; storing nothing until space is freed\n", float64(s.Log.DiskFree)/(1<<20))
	}
	if s.Log.OverQuota > 0 || s.Log.DiskRefused > 0 {
		fmt.Fprintf(w, "refused\t%d over quota, %d for want of disk space\n", s.Log.OverQuota, s.Log.DiskRefused)
	}
}

// keyState says what a rotated node's key is.
func keyState(k *view.KeyState) string {
	s := fmt.Sprintf("%s, after %d rotation(s)", k.Fingerprint, k.Rotations)
	if k.Void > 0 {
		s += fmt.Sprintf("; %d entries of an earlier key voided", k.Void)
	}
	if k.Retired {
		s += "; retired: nothing more is signed"
	}
	return s
}

// recovery says whether a node committed to a recovery key.
func recovery(commitment string) string {
	if commitment == "" {
		return "no recovery key: a lost or stolen key would end this identity ('announcer key commit')"
	}
	return "committed to a recovery key (" + commitment[:16] + "…)"
}
