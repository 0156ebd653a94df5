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
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/peterbourgon/ff/v3/ffcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root().ParseAndRun(ctx, os.Args[1:])
	stop()
	os.Exit(exitCode(err))
}

// usage collects what the flag package writes (help and usage text): it is
// printed for -h, and replaced by one line for a mistake.
var usageText bytes.Buffer

// usageError marks a mistake in how the command was called (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// exitCode prints err, if any, as one line on stderr and returns the exit
// status: 0 for success or help, 2 for a usage mistake, 1 for any other
// failure.
func exitCode(err error) int {
	var nx ffcli.NoExecError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		os.Stderr.Write(usageText.Bytes())
		return 0
	case errors.As(err, &nx):
		fmt.Fprintf(os.Stderr, "announcer: %s needs a subcommand (see 'announcer %s -h')\n", nx.Command.Name, nx.Command.Name)
		return 2
	}
	var ue usageError
	if msg, ok := strings.CutPrefix(err.Error(), "error parsing commandline arguments: "); ok {
		fmt.Fprintf(os.Stderr, "announcer: %s (see -h)\n", oneLine(msg))
		return 2
	}
	fmt.Fprintf(os.Stderr, "announcer: %s\n", oneLine(err.Error()))
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

func root() *ffcli.Command {
	fs := flag.NewFlagSet("announcer", flag.ContinueOnError)
	fs.SetOutput(&usageText)
	return &ffcli.Command{
		Name:       "announcer",
		ShortUsage: "announcer COMMAND [flags] [args]",
		ShortHelp:  "Announce 3D-printable Things on the Thing Tracker Network.",
		LongHelp: `A node keeps a signed, append-only log of announcements in its data dir
(--data, default ~/.ttn). Commands that change the log work offline: what
they append is announced when the node next runs.

Every flag can also come from the environment (TTN_DATA, TTN_FORMAT, …) or
from the configuration file DIR/config ("flag value" per line).`,
		FlagSet: fs,
		Subcommands: []*ffcli.Command{
			initCmd(), runCmd(), statusCmd(), trackerCmd(), publishCmd(), importCmd(),
			retractCmd(), ingestCmd(), logCmd(), keyCmd(), demoCmd(),
		},
		Exec: func(context.Context, []string) error { return flag.ErrHelp },
	}
}
