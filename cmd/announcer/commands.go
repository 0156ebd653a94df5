package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/thingtracker/ttn/cmd/internal/flags"
	"github.com/thingtracker/ttn/cmd/internal/output"
	"github.com/thingtracker/ttn/control"
	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
)

// maxInput bounds what publish, import and ingest read.
const maxInput = 256 << 20

// command builds a subcommand with the common flags (--data, --config).
func command(name, usage, short, long string, setup func(*flag.FlagSet), exec func(context.Context, *flags.Common, []string) error) *ffcli.Command {
	fs := flag.NewFlagSet("announcer "+name, flag.ContinueOnError)
	fs.SetOutput(&flags.UsageText)
	var common flags.Common
	common.Register(fs)
	if setup != nil {
		setup(fs)
	}
	c := &ffcli.Command{
		Name: name, ShortUsage: usage, ShortHelp: short, LongHelp: long,
		FlagSet: fs, Options: common.Options(),
	}
	if exec != nil {
		c.Exec = func(ctx context.Context, args []string) error { return exec(ctx, &common, args) }
	}
	return c
}

// openDir opens the data dir for a command that reads or changes the log:
// through the control socket of the node running on it, if one is, or else
// directly.
func openDir(c *flags.Common) (control.Operations, error) {
	return control.Open(c.Data)
}

// input opens a FILE argument, "-" meaning standard input.
func input(args []string, what string) (io.ReadCloser, error) {
	if len(args) != 1 {
		return nil, flags.Usagef("want one %s argument (a file, or - for standard input)", what)
	}
	if args[0] == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	return os.Open(args[0])
}

func readAll(args []string, what string) ([]byte, error) {
	r, err := input(args, what)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxInput {
		return nil, fmt.Errorf("%s is over %d bytes", what, maxInput)
	}
	return b, nil
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return flags.Usagef("unexpected argument %q", args[0])
	}
	return nil
}

func initCmd() *ffcli.Command {
	var recover string
	return command("init", "announcer init [--data DIR] [--recover NODE_ID FILE|-]", "Create the node's identity (kept if it exists) and its recovery phrase.",
		`Creates the data dir (mode 0700) and an Ed25519 key (mode 0600), then prints
the node ID, the fingerprint people compare out of band, and, once, a recovery
phrase of 24 words. The phrase is not kept anywhere: write it down and keep it
offline. It is the only way to replace a lost or stolen key without losing the
node's identity (its ID, trackers and followers); and whoever has it can take
the node over. The dir keeps only a commitment to it, announced in the node's
first node record. Run again, init keeps the key and says so.

With --recover NODE_ID, for a node whose key is lost with its data dir:
reads the node's recovery phrase from FILE, or standard input with '-', and
makes an empty data dir for that node, holding the recovery key. Then run the
node (it learns its chains from its peers) and rotate to the same phrase:
'announcer key rotate --reason lost -'. Followers need do nothing.`,
		func(fs *flag.FlagSet) {
			fs.StringVar(&recover, "recover", "", "recover the node `NODE_ID` whose key is lost, with its recovery phrase")
		}, func(ctx context.Context, c *flags.Common, args []string) error {
			if recover != "" {
				return recoverNode(c, recover, args)
			}
			if err := noArgs(args); err != nil {
				return err
			}
			id, created, err := datadir.InitIdentity(c.Data)
			if err != nil {
				return err
			}
			if !created {
				fmt.Fprintf(os.Stderr, "identity already in %s; keeping it\n", c.Data)
			}
			fmt.Printf("node %s\nfingerprint %s\n", id.ID, id.Fingerprint)
			if !created {
				return nil
			}
			return commitRecovery(ctx, c)
		})
}

// phraseKey reads a recovery phrase from args' FILE (or standard input)
// and returns its key.
func phraseKey(args []string) (crypto.PrivKey, error) {
	b, err := readAll(args, "FILE")
	if err != nil {
		return nil, err
	}
	return datadir.RecoveryKey(string(b))
}

// recoverNode makes an empty data dir for node id with the recovery key of
// the phrase in args' FILE.
func recoverNode(c *flags.Common, id string, args []string) error {
	key, err := phraseKey(args)
	if err != nil {
		return err
	}
	ident, err := datadir.InitRecovered(c.Data, id, key)
	if err != nil {
		return err
	}
	fmt.Printf("node %s\nfingerprint %s\n", ident.ID, ident.Fingerprint)
	fmt.Fprintln(os.Stderr, "Now run the node, so that it learns its chains from its peers, and rotate to the same phrase:\n"+
		"  announcer key rotate --reason lost -")
	return nil
}

// commitRecovery makes a recovery key, announces the commitment to it and
// prints its phrase, once.
func commitRecovery(ctx context.Context, c *flags.Common) error {
	phrase, commitment, err := datadir.NewRecoveryPhrase()
	if err != nil {
		return err
	}
	err = withDir(c, func(d control.Operations) error {
		_, err := d.Commit(ctx, commitment)
		return err
	})
	if err != nil {
		return err
	}
	printPhrase(phrase)
	return nil
}

// printPhrase shows a recovery phrase, once, with what it is for.
func printPhrase(phrase string) {
	fmt.Fprintln(os.Stderr, "Write the recovery phrase down and keep it offline. It is shown once and kept nowhere.\n"+
		"With it you can replace a lost or stolen key ('announcer key rotate') and keep the node's identity;\n"+
		"whoever has it can take the node over.")
	words := strings.Fields(phrase)
	for i := 0; i < len(words); i += 6 {
		fmt.Printf("recovery %s\n", strings.Join(words[i:i+6], " "))
	}
}

// rotateKey replaces the node's key with the recovery key of the phrase in
// args' FILE (or standard input), and prints the next phrase once.
func rotateKey(ctx context.Context, c *flags.Common, args []string, reason string, retire bool) error {
	key, err := phraseKey(args)
	if err != nil {
		return err
	}
	var phrase, next string
	if !retire {
		if phrase, next, err = datadir.NewRecoveryPhrase(); err != nil {
			return err
		}
	}
	var r datadir.Rotation
	err = withDir(c, func(d control.Operations) error {
		r, err = d.Rotate(ctx, key, next, reason)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Printf("rotated %s (seq %d), vouching for %d heads\nkey %s\n", r.Published.ID, r.Published.Seq, len(r.Heads), r.Fingerprint)
	if r.Retired {
		fmt.Println("retired: nothing more is signed for this node")
		return nil
	}
	printPhrase(phrase)
	return nil
}

func trackerCmd() *ffcli.Command {
	var title, description, url, name string
	create := command("create", "announcer tracker create --name NAME [--title T] [--description D] [--url U]",
		"Create a tracker and print its ID.",
		`Announces a tracker of this node named NAME (and a node record listing it)
and prints its ID alone. The ID is derived from the node's key and the name,
so creating the same name again prints the same ID and announces nothing.`,
		func(fs *flag.FlagSet) {
			fs.StringVar(&name, "name", "", "tracker `NAME` (required; part of the tracker ID)")
			fs.StringVar(&title, "title", "", "a human title")
			fs.StringVar(&description, "description", "", "a description")
			fs.StringVar(&url, "url", "", "a URL about the tracker")
		},
		func(ctx context.Context, c *flags.Common, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if name == "" {
				return flags.Usagef("tracker create needs --name")
			}
			d, err := openDir(c)
			if err != nil {
				return err
			}
			defer d.Close()
			r, err := d.CreateTracker(ctx, topics.TrackerInfo{Name: name, Title: title, Description: description, URL: url}, false)
			if err != nil {
				return err
			}
			if !r.Created {
				fmt.Fprintf(os.Stderr, "tracker %q exists; nothing announced\n", name)
			}
			fmt.Println(r.ID)
			return nil
		})
	cmd := command("tracker", "announcer tracker create [flags]", "Manage trackers.", "", nil, nil)
	cmd.Subcommands = []*ffcli.Command{create}
	return cmd
}

func publishCmd() *ffcli.Command {
	var tracker string
	var allowUnknownParent bool
	return command("publish", "announcer publish --tracker ID FILE|-", "Announce Things; print their announcement IDs.",
		`Reads one Thing object, or many as NDJSON, from FILE or standard input ('-')
and announces each on the tracker: a new Thing, a new version, or, for the
same version with changed fields, an edit. A Thing identical to what is
announced already is not announced again; its existing ID is printed. Every
Thing is checked first: if any is invalid, nothing is announced. A Thing's
parents ("parents": [{"tracker", "thing", "version", "announcement"}]: what it
derives from) must name Things this node holds (or that come earlier in the
input), unless --allow-unknown-parent.`,
		func(fs *flag.FlagSet) {
			fs.StringVar(&tracker, "tracker", "", "tracker `ID` (required)")
			fs.BoolVar(&allowUnknownParent, "allow-unknown-parent", false, "publish Things whose parents name Things this node does not hold")
		},
		func(ctx context.Context, c *flags.Common, args []string) error {
			if tracker == "" {
				return flags.Usagef("publish needs --tracker")
			}
			tid, err := topics.ParseTrackerID(tracker)
			if err != nil {
				return flags.Usagef("--tracker: %v", err)
			}
			r, err := input(args, "FILE")
			if err != nil {
				return err
			}
			things, err := ttn.ReadThings(r, maxInput)
			r.Close()
			if err != nil {
				return err
			}
			d, err := openDir(c)
			if err != nil {
				return err
			}
			defer d.Close()
			ps, err := d.Publish(ctx, tid, things, datadir.PublishOptions{AllowUnknownParent: allowUnknownParent})
			if err != nil {
				return err
			}
			unchanged := 0
			for _, p := range ps {
				fmt.Println(p.ID)
				if !p.New {
					unchanged++
				}
			}
			if unchanged > 0 {
				fmt.Fprintf(os.Stderr, "%d of %d unchanged; not announced again\n", unchanged, len(ps))
			}
			return nil
		})
}

func importCmd() *ffcli.Command {
	return command("import", "announcer import TRACKER.json", "Announce a TTN tracker document.",
		`Reads a Thing Tracker Network tracker document (any variant of the TTN
specification) and announces it: the tracker, named by the document's "id",
and each of its Things. Prints the IDs of new announcements; re-importing an
unchanged document prints nothing. Unknown x*Metadata members are kept.`,
		nil, func(ctx context.Context, c *flags.Common, args []string) error {
			b, err := readAll(args, "TRACKER.json")
			if err != nil {
				return err
			}
			doc, err := ttn.ParseDocument(b)
			if err != nil {
				return err
			}
			d, err := openDir(c)
			if err != nil {
				return err
			}
			defer d.Close()
			r, err := d.Import(ctx, doc)
			if err != nil {
				return err
			}
			fresh := 0
			for _, p := range r.Published {
				if p.New {
					fmt.Println(p.ID)
					fresh++
				}
			}
			fmt.Fprintf(os.Stderr, "tracker %s (%q): %d things, %d announced, %d unchanged\n",
				r.Tracker.ID, doc.Info.Name, len(r.Published), fresh, len(r.Published)-fresh)
			return nil
		})
}

func retractCmd() *ffcli.Command {
	return command("retract", "announcer retract ANNOUNCEMENT_ID", "Hide a Thing version; print the retraction's ID.",
		`Announces that the Thing version of one of this node's announcements is
withdrawn: it disappears from the Thing's latest state. The announcement
itself stays in every log.`,
		nil, func(ctx context.Context, c *flags.Common, args []string) error {
			if len(args) != 1 {
				return flags.Usagef("retract needs one announcement ID")
			}
			id, err := topics.ParseID(args[0])
			if err != nil {
				return flags.Usagef("%v", err)
			}
			d, err := openDir(c)
			if err != nil {
				return err
			}
			defer d.Close()
			p, err := d.Retract(ctx, id)
			if err != nil {
				return err
			}
			if !p.New {
				fmt.Fprintln(os.Stderr, "already retracted")
			}
			fmt.Println(p.ID)
			return nil
		})
}

func ingestCmd() *ffcli.Command {
	return command("ingest", "announcer ingest FILE|-", "Append announcements from another node's log.",
		`Reads Entry lines as 'announcer log --format json' prints them (only each
line's "envelope" counts) and appends the announcements after checking each
as the network would: signature, canonical bytes, payload, owner. If any is
invalid, nothing is appended.`,
		nil, func(ctx context.Context, c *flags.Common, args []string) error {
			b, err := readAll(args, "FILE")
			if err != nil {
				return err
			}
			envs, err := readEnvelopes(b)
			if err != nil {
				return err
			}
			d, err := openDir(c)
			if err != nil {
				return err
			}
			defer d.Close()
			r, err := d.Ingest(ctx, envs)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%d stored, %d already present, %d refused (fork or chain limits)\n", r.Stored, r.Duplicate, r.Refused)
			return nil
		})
}

// readEnvelopes reads the envelopes of Entry JSON lines.
func readEnvelopes(b []byte) ([][]byte, error) {
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 4*topics.MaxEnvelopeSize)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e struct {
			Envelope []byte `json:"envelope"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("line %d: not an Entry: %v", n, err)
		}
		if len(e.Envelope) == 0 {
			return nil, fmt.Errorf("line %d: no envelope", n)
		}
		out = append(out, e.Envelope)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no entries")
	}
	return out, nil
}

func logCmd() *ffcli.Command {
	var format string
	var since uint64
	var limit int
	return command("log", "announcer log [--format json|text] [--since C] [--limit N]", "Print the log.",
		`Prints the log's entries after cursor C (0: from the start), in arrival order.
json prints one Entry per line: cursor, id, topic, kind, author, tracker, seq,
announcement (the payload as signed) and envelope (base64), enough for anyone
to verify it; text prints one line per entry.`,
		func(fs *flag.FlagSet) {
			fs.StringVar(&format, "format", output.Text, "json or text")
			fs.Uint64Var(&since, "since", 0, "print entries after this cursor")
			fs.IntVar(&limit, "limit", 0, "print at most N entries (0: all)")
		},
		func(ctx context.Context, c *flags.Common, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if err := output.CheckFormat(format); err != nil {
				return flags.Usagef("%v", err)
			}
			if limit < 0 {
				return flags.Usagef("--limit %d: want 0 or more", limit)
			}
			d, err := openDir(c)
			if err != nil {
				return err
			}
			defer d.Close()
			w := bufio.NewWriter(os.Stdout)
			defer w.Flush()
			const page = 1024
			for printed := 0; limit == 0 || printed < limit; {
				n := page
				if limit > 0 {
					n = min(n, limit-printed)
				}
				es, err := d.Entries(ctx, since, n)
				if err != nil {
					return err
				}
				for i := range es {
					if err := output.Entry(w, format, &es[i]); err != nil {
						return err
					}
					since = es[i].Cursor
				}
				printed += len(es)
				if len(es) < n {
					break
				}
			}
			return nil
		})
}

func keyCmd() *ffcli.Command {
	export := command("export", "announcer key export FILE|-", "Write the node's private key to FILE.",
		`Writes the node's private key (PEM) to FILE, created with mode 0600 and never
overwritten, or to standard output with '-'. Keep it safe: whoever has it can
announce as this node; whoever loses it loses authorship of its trackers.`,
		nil, func(_ context.Context, c *flags.Common, args []string) error {
			if len(args) != 1 {
				return flags.Usagef("key export needs a FILE (or - for standard output)")
			}
			if args[0] == "-" {
				return datadir.ExportKey(c.Data, os.Stdout)
			}
			f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			if err := datadir.ExportKey(c.Data, f); err != nil {
				f.Close()
				os.Remove(args[0])
				return err
			}
			return f.Close()
		})
	imp := command("import", "announcer key import FILE|-", "Install a private key in an empty data dir.",
		`Installs a key written by 'announcer key export' as the identity of a data dir
that has none, e.g. to move a node to a new machine. Prints the node ID and
fingerprint.`,
		nil, func(_ context.Context, c *flags.Common, args []string) error {
			r, err := input(args, "FILE")
			if err != nil {
				return err
			}
			defer r.Close()
			id, err := datadir.ImportKey(c.Data, r)
			if err != nil {
				return err
			}
			fmt.Printf("node %s\nfingerprint %s\n", id.ID, id.Fingerprint)
			return nil
		})
	commit := command("commit", "announcer key commit", "Make a recovery phrase for an identity without one.",
		`For an identity created without a recovery phrase (by 'run' or 'subscriber',
or before this version): makes a recovery key, announces the commitment to it
in a node record, and prints its phrase of 24 words, once. Refused when the node
already committed: only a rotation sets the next commitment.`,
		nil, func(ctx context.Context, c *flags.Common, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			return commitRecovery(ctx, c)
		})
	var reason string
	var retire bool
	rotate := command("rotate", "announcer key rotate [--reason R] [--retire] FILE|-", "Replace a stolen or lost key with the recovery key.",
		`Reads the recovery phrase from FILE, or from standard input with '-' (never
from a flag: flags end up in shell history and process lists), and makes its
key the node's signing key: it announces a rotate record, signed by that key,
that vouches for what this node published itself on each of its trackers;
whatever the old key signed past those heads (a thief's announcements) becomes
void on every node that learns of the rotation. The node ID, its trackers and
its followers stay. Prints the new key's fingerprint and, once, the next
recovery phrase: the one just used is spent. Through the running node when one
runs (it signs with the new key at once, and takes it as its network identity
when it next starts). Refused, changing nothing, for a phrase that is not the
one committed to, a spent one, or a node without a commitment.

With --retire, commits to no next key: the identity ends, and nothing signed
after the rotation is accepted.`,
		func(fs *flag.FlagSet) {
			fs.StringVar(&reason, "reason", topics.ReasonCompromised, "why: compromised (the key was stolen), lost or routine")
			fs.BoolVar(&retire, "retire", false, "end the identity: commit to no next key")
		}, func(ctx context.Context, c *flags.Common, args []string) error {
			switch reason {
			case topics.ReasonCompromised, topics.ReasonLost, topics.ReasonRoutine:
			default:
				return flags.Usagef("--reason %q: want compromised, lost or routine", reason)
			}
			return rotateKey(ctx, c, args, reason, retire)
		})
	cmd := command("key", "announcer key export|import|commit|rotate [flags] [FILE]", "Back up or restore the node's key; commit to a recovery key; rotate to it.", "", nil, nil)
	cmd.Subcommands = []*ffcli.Command{export, imp, commit, rotate}
	return cmd
}
