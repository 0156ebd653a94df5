// Command subscriber follows trackers on the Thing Tracker Network and
// prints their announcements as they arrive.
//
// It runs a node on its data dir (the same node flags as "announcer run"),
// or, when a node already runs on that dir, attaches to it through its
// control socket. Follows and the last printed cursor are kept in the dir:
// a restarted subscriber resumes where it stopped, printing nothing twice.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/thingtracker/ttn/cmd/internal/flags"
	"github.com/thingtracker/ttn/cmd/internal/output"
	"github.com/thingtracker/ttn/control"
	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/node"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

func main() { flags.Main("subscriber", root()) }

// options are the subscriber's own flags.
type options struct {
	common      flags.Common
	node        flags.Node
	unfollow    flags.FollowList
	follows     flags.List // --follow-follows
	promiscuous bool
	since       int64
	format      string
	quiet       bool
}

func root() *ffcli.Command {
	var o options
	fs := flag.NewFlagSet("subscriber", flag.ContinueOnError)
	fs.SetOutput(&flags.UsageText)
	o.common.Register(fs)
	o.node.Register(fs)
	fs.Var(&o.unfollow, "unfollow", "stop following a tracker or node `ID`, repeatable")
	fs.Var(&o.follows, "follow-follows", "follow node `ID` and what it publicly follows (the trackers and nodes its node record lists), while this subscriber runs the node; repeatable")
	fs.BoolVar(&o.promiscuous, "promiscuous", false, "follow every tracker learnt from discovery records, up to --max-trackers, and print everything")
	fs.Int64Var(&o.since, "since", -1, "print the entries after cursor `C` (0: everything), instead of resuming after the last printed")
	fs.StringVar(&o.format, "format", output.Text, "json (one Entry per line) or text (one line per Thing)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress on stderr during a long catch-up")

	follows := &ffcli.Command{
		Name:       "follows",
		ShortUsage: "subscriber follows [--data DIR]",
		ShortHelp:  "List the followed trackers.",
		FlagSet:    flag.NewFlagSet("subscriber follows", flag.ContinueOnError),
	}
	var fc flags.Common
	follows.FlagSet.SetOutput(&flags.UsageText)
	fc.Register(follows.FlagSet)
	follows.Options = fc.Options()
	follows.Exec = func(_ context.Context, args []string) error {
		if len(args) > 0 {
			return flags.Usagef("unexpected argument %q", args[0])
		}
		fs, err := datadir.ReadFollows(fc.Data)
		if err != nil {
			return err
		}
		for _, t := range fs.Trackers {
			fmt.Printf("tracker %s\n", t)
		}
		for _, n := range fs.Nodes {
			fmt.Printf("node %s\n", n)
		}
		return nil
	}

	return &ffcli.Command{
		Name:       "subscriber",
		ShortUsage: "subscriber [node flags] [--follow ID]... [--promiscuous] [--since C] [--format json|text]",
		ShortHelp:  "Follow trackers and print their announcements as they arrive.",
		LongHelp: `Runs a node on the data dir, or attaches to the node already running there,
follows the trackers given with --follow and those stored in the dir, and
prints what arrives on them: with --format json one Entry per line (cursor,
id, topic, kind, author, tracker, seq, announcement, envelope: enough to
verify it), with --format text one line per Thing. A restarted subscriber
resumes after the last entry it printed; --since C starts after cursor C.

Flags may also come from the environment (TTN_FOLLOW=ID1,ID2, TTN_JOIN, …) or
the configuration file DIR/config.

"subscriber version" or "subscriber --version" prints the version.`,
		FlagSet:     fs,
		Options:     o.common.Options(),
		Subcommands: []*ffcli.Command{follows, flags.VersionCommand("subscriber")},
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return flags.Usagef("unexpected argument %q", args[0])
			}
			return subscribe(ctx, &o)
		},
	}
}

func subscribe(ctx context.Context, o *options) error {
	if err := output.CheckFormat(o.format); err != nil {
		return flags.Usagef("%v", err)
	}
	dir := o.common.Data
	since, err := datadir.ReadSubscriberCursor(dir)
	if err != nil {
		return err
	}
	if o.since >= 0 {
		since = uint64(o.since)
	}
	p := &printer{dir: dir, format: o.format, last: since, w: bufio.NewWriter(os.Stdout)}
	defer p.save(true)

	if c, err := control.Dial(ctx, dir); err == nil {
		return attach(ctx, c, o, p)
	} else if !errors.Is(err, control.ErrNoNode) {
		return err
	}
	if _, _, err := datadir.InitIdentity(dir); err != nil {
		return err
	}
	if err := datadir.ChangeFollows(dir, o.node.Follow.IDs, o.unfollow.IDs); err != nil {
		return err
	}
	cfg, err := o.node.Config(dir)
	if err != nil {
		return flags.Usagef("%v", err)
	}
	cfg.Promiscuous = o.promiscuous
	cfg.FollowFollows = o.follows
	if !o.quiet {
		cfg.OnProgress = newProgress(os.Stderr).update
	}
	return node.Run(ctx, cfg, os.Stderr, func(ctx context.Context, n *node.Node) error {
		r := n.Log.NewReader(p.last)
		for {
			e, err := r.Next(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if o.promiscuous || n.Followed(e.Tracker) {
				e.Trust = n.TrustLevel(e.Author)
				if err := p.print(&e); err != nil {
					return err
				}
			}
			if e.Cursor == n.Log.Last() {
				p.save(false) // caught up: show it
			}
		}
	})
}

// attach subscribes to the node already running on the dir.
func attach(ctx context.Context, c *control.Client, o *options, p *printer) error {
	if len(o.follows) > 0 {
		return fmt.Errorf("--follow-follows: a node already runs on %s; stop it, or follow the nodes with --follow", o.common.Data)
	}
	if err := c.Follow(ctx, o.node.Follow.IDs); err != nil {
		return err
	}
	if err := c.Unfollow(ctx, o.unfollow.IDs); err != nil {
		return err
	}
	if !o.promiscuous {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if len(st.Follows.Trackers)+len(st.Follows.Nodes) == 0 {
			return errors.New("following nothing: give --follow ID or --promiscuous")
		}
	}
	fmt.Fprintf(os.Stderr, "attached to the node running on %s\n", o.common.Data)
	s, err := c.Subscribe(ctx, p.last, !o.promiscuous)
	if err != nil {
		return err
	}
	defer s.Close()
	for {
		e, err := s.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := p.print(&e); err != nil {
			return err
		}
		p.save(false)
	}
}

// printer prints entries and remembers the last printed cursor in the dir.
type printer struct {
	dir     string
	format  string
	w       *bufio.Writer
	last    uint64
	saved   uint64
	savedAt time.Time
}

// cursorEvery bounds how often the printed cursor is written (and synced)
// while entries keep coming; a stop writes it at once.
const cursorEvery = 200 * time.Millisecond

func (p *printer) print(e *view.Entry) error {
	if p.format == output.JSON || e.Kind == topics.KindThing || e.Kind == topics.KindRetract {
		if err := output.Entry(p.w, p.format, e); err != nil {
			return err
		}
	}
	p.last = e.Cursor
	return nil
}

// save flushes what was printed, then records its cursor, at most every
// cursorEvery unless final: an entry is never marked printed before it is.
func (p *printer) save(final bool) {
	if err := p.w.Flush(); err != nil {
		return
	}
	if p.last != p.saved && (final || time.Since(p.savedAt) >= cursorEvery) {
		if err := datadir.WriteSubscriberCursor(p.dir, p.last); err == nil {
			p.saved, p.savedAt = p.last, time.Now()
		}
	}
}
