// Command announcer runs a Thing Tracker Network node and manages its data
// dir: identity, trackers, announcements and the log.
//
// Every flag can also be set in the environment (TTN_ and the flag name in
// capitals, dashes as underscores) or in the configuration file (--config,
// by default DIR/config, one "flag value" per line); the command line wins
// over the environment, which wins over the file. Run "announcer -h" or
// "announcer COMMAND -h" for help.
package main

import (
	"context"
	"flag"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/thingtracker/ttn/cmd/internal/flags"
)

func main() { flags.Main("announcer", root()) }

func root() *ffcli.Command {
	fs := flag.NewFlagSet("announcer", flag.ContinueOnError)
	fs.SetOutput(&flags.UsageText)
	return &ffcli.Command{
		Name:       "announcer",
		ShortUsage: "announcer COMMAND [flags] [args]",
		ShortHelp:  "Announce 3D-printable Things on the Thing Tracker Network.",
		LongHelp: `A node keeps a signed, append-only log of announcements in its data dir
(--data, default ` + flags.DefaultDataDir() + `). Commands that change the log work
offline: what they append is announced when the node next runs.

Every flag can also come from the environment (TTN_DATA, TTN_FORMAT, …) or
from the configuration file DIR/config ("flag value" per line).

"announcer version" or "announcer --version" prints the version.`,
		FlagSet: fs,
		Subcommands: []*ffcli.Command{
			initCmd(), runCmd(), statusCmd(), trackerCmd(), publishCmd(), importCmd(),
			retractCmd(), ingestCmd(), logCmd(), keyCmd(), nodeCmd(), trustCmd(), flagCmd(), blockCmd(true),
			blockCmd(false), profileCmd(), discoveredCmd(), searchCmd(), reindexCmd(), demoCmd(),
			flags.VersionCommand("announcer"),
		},
		Exec: func(context.Context, []string) error { return flag.ErrHelp },
	}
}
