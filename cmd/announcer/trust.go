package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/go-json-experiment/json"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/thingtracker/ttn/cmd/internal/flags"
	"github.com/thingtracker/ttn/cmd/internal/output"
	"github.com/thingtracker/ttn/control"
	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// The trust commands (DESIGN.md, "Trust"): what this node says of others
// (trust, flag: signed records on its node tracker, announced), what it
// keeps to itself (block), and what it shows (node, discovered).

// withDir runs fn on the data dir, through the running node if one is.
func withDir(c *flags.Common, fn func(control.Operations) error) error {
	d, err := openDir(c)
	if err != nil {
		return err
	}
	defer d.Close()
	return fn(d)
}

// show prints v as JSON, or as text by text.
func show[T any](format string, v T, text func(T)) error {
	if format == output.JSON {
		return json.MarshalWrite(os.Stdout, v, json.Deterministic(true))
	}
	text(v)
	return nil
}

// interspersed parses the flags of fs that follow positional arguments,
// as the usage lines of trust and flag put them ("announcer trust NODE_ID
// --level L"): the flag package, and ffcli with it, stops at the first
// argument that is not a flag and would pass the rest on as arguments. It
// returns the positional arguments; everything after "--" is one.
func interspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if a := args[0]; a == "-" || !strings.HasPrefix(a, "-") {
			pos, args = append(pos, a), args[1:]
			continue
		}
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, flags.Usagef("%v (see -h)", err)
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		args = rest
	}
	return pos, nil
}

// printRecord prints what publishing a record did.
func printRecord(p feed.Published, what string) {
	if !p.New {
		fmt.Fprintf(os.Stderr, "%s already stands; nothing announced\n", what)
	}
	fmt.Println(p.ID)
}

func trustCmd() *ffcli.Command {
	var level, fingerprint, note string
	var set *flag.FlagSet
	return command("trust", "announcer trust NODE_ID --level L [--fingerprint F] [--note N]",
		"Say what this node thinks of another node; print the record's ID.",
		`Announces a trust record on this node's node tracker. Levels:
  verified    you compared the node's fingerprint with its owner out of band
              (give it with --fingerprint: a fingerprint that does not match
              the node ID is refused, and nothing is recorded)
  trusted     vouched for, fingerprint not compared
  marginal    partly vouched for
  distrusted  not to be believed: its announcements are neither stored nor
              forwarded here
  none        withdraws your earlier record on the node
Your verified and trusted nodes introduce others as full, your marginal ones
as marginal: a node is "web" when one full or three marginal introductions
vouch for it (DESIGN.md, "Trust"). 'announcer node ID' shows the result.`,
		func(fs *flag.FlagSet) {
			set = fs
			fs.StringVar(&level, "level", "", "`L`: verified, trusted, marginal, distrusted or none (required)")
			fs.StringVar(&fingerprint, "fingerprint", "", "the node's fingerprint `F`, as its owner gave it (required with verified)")
			fs.StringVar(&note, "note", "", "a one-line note")
		},
		func(ctx context.Context, c *flags.Common, args []string) error {
			args, err := interspersed(set, args)
			if err != nil {
				return err
			}
			if len(args) != 1 {
				return flags.Usagef("trust needs one node ID")
			}
			if level == "" {
				return flags.Usagef("trust needs --level")
			}
			return withDir(c, func(d control.Operations) error {
				p, err := d.Trust(ctx, args[0], topics.TrustLevel(level), fingerprint, note)
				if err != nil {
					return err
				}
				printRecord(p, "this trust record")
				return nil
			})
		})
}

func flagCmd() *ffcli.Command {
	var tracker, thing, node, reason, note string
	var withdraw bool
	var set *flag.FlagSet
	return command("flag", "announcer flag (ANNOUNCEMENT_ID | --tracker T [--thing ID] | --node N) --reason R [--note N] [--withdraw]",
		"Mark an announcement, a Thing, a tracker or a node as suspicious.",
		`Announces a flag record on this node's node tracker, or, with --withdraw,
takes this node's flag on the target back. Reasons: malware, spam,
objectionable, infringement, broken, other. A Thing counts as flagged on a
node when one flag by the node itself or a node it verified or trusts, or
three by its marginal and web nodes, mark it (or its announcement, tracker or
author); flagged Things are left out of listings unless asked for.`,
		func(fs *flag.FlagSet) {
			set = fs
			fs.StringVar(&tracker, "tracker", "", "flag tracker `T` (with --thing: one of its Things)")
			fs.StringVar(&thing, "thing", "", "flag Thing `ID` of --tracker")
			fs.StringVar(&node, "node", "", "flag node `N`")
			fs.StringVar(&reason, "reason", "", "`R`: malware, spam, objectionable, infringement, broken or other (required unless --withdraw)")
			fs.StringVar(&note, "note", "", "a one-line note")
			fs.BoolVar(&withdraw, "withdraw", false, "take this node's flag on the target back")
		},
		func(ctx context.Context, c *flags.Common, args []string) error {
			args, err := interspersed(set, args)
			if err != nil {
				return err
			}
			var f topics.Flag
			switch {
			case len(args) == 1 && tracker == "" && thing == "" && node == "":
				id, err := topics.ParseID(args[0])
				if err != nil {
					return flags.Usagef("%v", err)
				}
				f.Target.Announcement = id
			case len(args) == 0 && tracker != "" && node == "":
				t, err := topics.ParseTrackerID(tracker)
				if err != nil {
					return flags.Usagef("--tracker: %v", err)
				}
				f.Target.Tracker, f.Target.Thing = t, thing
			case len(args) == 0 && node != "" && tracker == "" && thing == "":
				f.Target.Node = node
			default:
				return flags.Usagef("flag needs exactly one target: an announcement ID, --tracker (with --thing), or --node")
			}
			if reason == "" && !withdraw {
				return flags.Usagef("flag needs --reason")
			}
			f.Reason, f.Note, f.Withdraw = topics.FlagReason(reason), note, withdraw
			return withDir(c, func(d control.Operations) error {
				p, err := d.Flag(ctx, f)
				if err != nil {
					return err
				}
				printRecord(p, "this flag")
				return nil
			})
		})
}

func blockCmd(blocked bool) *ffcli.Command {
	name, short, long := "block", "Ignore nodes: never store or forward their announcements.",
		`Puts nodes on this node's local block list (DIR/blocked): their announcements
are neither stored, forwarded nor fetched from now on, and their records and
flags count for nothing. The list is never announced.`
	if !blocked {
		name, short, long = "unblock", "Take nodes off the block list.",
			`Takes nodes off this node's local block list; their announcements are
accepted again as their trust level allows.`
	}
	return command(name, "announcer "+name+" NODE_ID...", short, long, nil,
		func(ctx context.Context, c *flags.Common, args []string) error {
			if len(args) == 0 {
				return flags.Usagef("%s needs node IDs", name)
			}
			for _, id := range args {
				if _, err := topics.NodeKey(id); err != nil {
					return flags.Usagef("%s: %v", id, err)
				}
			}
			return withDir(c, func(d control.Operations) error { return d.Block(ctx, args, blocked) })
		})
}

func profileCmd() *ffcli.Command {
	var p datadir.Profile
	return command("profile", "announcer profile [--name N] [--description D] [--url U]",
		"Set this node's public profile; print the node record's ID.",
		`Announces a node record with the profile given (what is not given is left
empty) and the node's trackers and follows as they stand. Others see it in
'announcer node ID' and on the node's page.`,
		func(fs *flag.FlagSet) {
			fs.StringVar(&p.Name, "name", "", "a display `NAME`")
			fs.StringVar(&p.Description, "description", "", "a description (may span lines)")
			fs.StringVar(&p.URL, "url", "", "a URL about the node or its maker")
		},
		func(ctx context.Context, c *flags.Common, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			return withDir(c, func(d control.Operations) error {
				r, err := d.SetProfile(ctx, p)
				if err != nil {
					return err
				}
				printRecord(r, "this profile")
				return nil
			})
		})
}

func nodeCmd() *ffcli.Command {
	var format string
	return command("node", "announcer node [--format text|json] NODE_ID",
		"Show what this node holds about a node, and how far it trusts it.",
		`Shows a node's profile, fingerprint, trust level here and why (for a web
node, the introducers that vouch for it), its trackers and public follows, the
trust records it gave and received, and the flags it made and received.`,
		func(fs *flag.FlagSet) {
			fs.StringVar(&format, "format", output.Text, "json or text")
		},
		func(ctx context.Context, c *flags.Common, args []string) error {
			if len(args) != 1 {
				return flags.Usagef("node needs one node ID")
			}
			if err := output.CheckFormat(format); err != nil {
				return flags.Usagef("%v", err)
			}
			if _, err := topics.NodeKey(args[0]); err != nil {
				return flags.Usagef("%v", err)
			}
			return withDir(c, func(d control.Operations) error {
				n, err := d.NodeDetail(ctx, args[0])
				if err != nil {
					return err
				}
				return show(format, n, printNode)
			})
		})
}

func printNode(n *view.NodeDetail) {
	w := tabwriter.NewWriter(os.Stdout, 0, 2, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintf(w, "node\t%s\n", n.ID)
	fmt.Fprintf(w, "fingerprint\t%s\n", n.Fingerprint)
	level := n.Trust.Level
	switch {
	case n.Trust.Level == "web":
		level += fmt.Sprintf(" (hop %d, via %s)", n.Trust.Hops, strings.Join(n.Trust.Introducers, ", "))
	case n.Blocked:
		level += " (on the local block list)"
	}
	fmt.Fprintf(w, "trust\t%s\n", level)
	if n.Commitment != "" {
		fmt.Fprintf(w, "recovery\tcommitted (%s…)\n", n.Commitment[:16])
	}
	if n.Key != nil {
		fmt.Fprintf(w, "key\t%s\n", keyState(n.Key))
	}
	for _, f := range []struct{ k, v string }{{"name", n.Name}, {"description", n.Description}, {"url", n.URL}} {
		if f.v != "" {
			fmt.Fprintf(w, "%s\t%s\n", f.k, output.OneLine(f.v))
		}
	}
	if n.Record == nil {
		fmt.Fprintf(w, "record\tno node record held\n")
	}
	for _, t := range n.Trackers {
		fmt.Fprintf(w, "tracker\t%s\n", t)
	}
	switch {
	case n.Follows == nil:
		fmt.Fprintf(w, "follows\tnot published\n")
	default:
		for _, t := range n.Follows.Trackers {
			fmt.Fprintf(w, "follows\ttracker %s\n", t)
		}
		for _, id := range n.Follows.Nodes {
			fmt.Fprintf(w, "follows\tnode %s\n", id)
		}
	}
	for _, t := range n.TrustGiven {
		fmt.Fprintf(w, "says\t%s of %s\n", t.Level, t.Subject)
	}
	for _, t := range n.TrustReceived {
		fmt.Fprintf(w, "said of it\t%s by %s\n", t.Level, t.Author)
	}
	for _, f := range n.FlagsMade {
		fmt.Fprintf(w, "flagged\t%s: %s\n", f.Target, f.Reason)
	}
	flagged := "no"
	if n.Flags.Flagged {
		flagged = "yes"
	}
	fmt.Fprintf(w, "flagged\t%s (%d flags)\n", flagged, len(n.Flags.Flags))
	for _, f := range n.Flags.Flags {
		fmt.Fprintf(w, "flag\t%s by %s (%s%s)\n", f.Reason, f.Author, f.Level, map[bool]string{true: "", false: ", does not count"}[f.Counts])
	}
}

func discoveredCmd() *ffcli.Command {
	var format string
	var dismiss, follow bool
	return command("discovered", "announcer discovered [--format text|json] [--follow|--dismiss ID...]",
		"List trackers seen on the network and not followed; follow or dismiss them.",
		`The listening-mode list: every tracker this node learnt of from discovery
records and does not follow, with its title, its owner and the owner's trust
level, first and last seen; the most recently seen first. --follow followed by
tracker IDs follows them (as 'subscriber --follow'); --dismiss followed by
tracker IDs, or node IDs for all of an owner's trackers, takes them off the
list for good.`,
		func(fs *flag.FlagSet) {
			fs.StringVar(&format, "format", output.Text, "json or text")
			fs.BoolVar(&follow, "follow", false, "follow the tracker IDs given as arguments")
			fs.BoolVar(&dismiss, "dismiss", false, "dismiss the tracker and node IDs given as arguments")
		},
		func(ctx context.Context, c *flags.Common, args []string) error {
			if err := output.CheckFormat(format); err != nil {
				return flags.Usagef("%v", err)
			}
			if follow && dismiss || (follow || dismiss) != (len(args) > 0) {
				return flags.Usagef("IDs go with --follow or --dismiss, and each needs IDs")
			}
			var fs datadir.FollowSet
			for _, id := range args {
				if !follow {
					break
				}
				t, err := topics.ParseTrackerID(id)
				if err != nil {
					return flags.Usagef("--follow %s: %v", id, err)
				}
				fs.Trackers = append(fs.Trackers, t)
			}
			return withDir(c, func(d control.Operations) error {
				switch {
				case dismiss:
					return d.Dismiss(ctx, args)
				case follow:
					if cl, ok := d.(*control.Client); ok {
						return cl.Follow(ctx, fs)
					}
					return datadir.ChangeFollows(c.Data, fs, datadir.FollowSet{})
				}
				ds, err := d.Discovered(ctx)
				if err != nil {
					return err
				}
				return show(format, ds, printDiscovered)
			})
		})
}

func printDiscovered(ds []view.Discovered) {
	w := tabwriter.NewWriter(os.Stdout, 0, 2, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintf(w, "TRACKER\tTITLE\tOWNER\tLEVEL\tFIRST SEEN\tLAST SEEN\n")
	for _, d := range ds {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Tracker, output.OneLine(d.Title), d.Node, d.Level, d.First, d.Last)
	}
}
