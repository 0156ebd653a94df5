package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"os"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/thingtracker/ttn/cmd/internal/flags"
	"github.com/thingtracker/ttn/cmd/internal/output"
	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/node"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
)

// demoTracker is the TTN specification's own example tracker document
// (garyhodgson/thing-tracker-network, examples/example-tracker.json).
//
//go:embed demo/tracker.json
var demoTracker []byte

func demoCmd() *ffcli.Command {
	var keep bool
	return command("demo", "announcer demo [--keep]", "Show a node at work, with no setup.",
		`Creates a node in a temporary data dir, imports the TTN specification's
example tracker, announces a new version and an edit of one of its Things,
retracts the new version, and prints the log. Nothing outside the temporary
dir is touched; --keep leaves it for you to explore.`,
		func(fs *flag.FlagSet) {
			fs.BoolVar(&keep, "keep", false, "keep the temporary data dir")
		},
		func(ctx context.Context, _ *flags.Common, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "ttn-demo-")
			if err != nil {
				return err
			}
			if keep {
				defer fmt.Printf("\ndata dir kept: %s (try: announcer log --data %s)\n", dir, dir)
			} else {
				defer os.RemoveAll(dir)
			}
			return demo(ctx, dir)
		})
}

func demo(ctx context.Context, dir string) error {
	id, _, err := node.InitIdentity(dir)
	if err != nil {
		return err
	}
	fmt.Printf("== a new node\nnode        %s\nfingerprint %s\n\n", id.ID, id.Fingerprint)
	d, err := node.OpenCore(dir, feed.Config{})
	if err != nil {
		return err
	}
	defer d.Close()

	doc, err := ttn.ParseDocument(demoTracker)
	if err != nil {
		return err
	}
	r, err := d.Import(ctx, doc)
	if err != nil {
		return err
	}
	fmt.Printf("== imported the TTN example tracker %q as tracker %s: %d things\n", doc.Info.Name, r.Tracker.ID, len(r.Published))
	again, err := d.Import(ctx, doc)
	if err != nil {
		return err
	}
	fresh := 0
	for _, p := range again.Published {
		if p.New {
			fresh++
		}
	}
	fmt.Printf("== imported it again: %d new announcements (unchanged Things are not re-announced)\n", fresh)

	beest := doc.Things[0]
	v2 := beest
	v2.Version, v2.Title = "2", beest.Title+" II"
	edit := beest
	edit.Description = "Fixed a typo. " + beest.Description
	ps, err := d.Publish(ctx, r.Tracker.ID, []topics.Thing{v2, edit})
	if err != nil {
		return err
	}
	fmt.Printf("== announced version 2 of %q (%s) and an edit of version %s (%s)\n", beest.Title, ps[0].ID, beest.Version, ps[1].ID)
	if _, err := d.Retract(ctx, ps[0].ID); err != nil {
		return err
	}
	st, err := d.Log.Thing(r.Tracker.ID, beest.ID)
	if err != nil {
		return err
	}
	fmt.Printf("== retracted version 2: the latest version is %s again, with %d announcements\n\n", st.Latest().Version, len(st.Latest().Announcements))

	fmt.Println("== the log (cursor, kind, tracker #seq, what)")
	es, err := d.Log.Entries(0, 100)
	if err != nil {
		return err
	}
	for i := range es {
		if err := output.Entry(os.Stdout, output.Text, &es[i]); err != nil {
			return err
		}
	}
	return nil
}
