package flags

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/thingtracker/ttn/cmd/internal/version"
)

// UsageText collects what the commands' flag sets write (help and usage
// text): it is printed for -h, and replaced by one line for a mistake.
var UsageText bytes.Buffer

// UsageError marks a mistake in how a command was called (exit status 2).
type UsageError struct{ msg string }

func (e UsageError) Error() string { return e.msg }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error { return UsageError{fmt.Sprintf(format, args...)} }

// Main runs the command tree on the program's arguments until it returns or
// one of StopSignals cancels it, and exits with ExitCode's status. A first
// argument --version prints the version line instead. A word that names no
// subcommand of a command that has some is a usage mistake (status 2), at
// every level: a script calling a command this version lacks must not
// believe it succeeded.
func Main(name string, root *ffcli.Command) {
	args := os.Args[1:]
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		// Not a flag of the root: a flag would also be read from the
		// environment, and TTN_VERSION=v1.2.3 in a deployment would then
		// stop the subscriber from starting.
		fmt.Println(version.String(name))
		os.Exit(0)
	}
	strict(name, root)
	ctx, stop := signal.NotifyContext(context.Background(), StopSignals...)
	err := root.ParseAndRun(ctx, args)
	stop()
	os.Exit(ExitCode(name, err))
}

// strict makes every command of the tree that has subcommands refuse
// arguments that name none of them. ffcli passes them to the command's Exec
// instead, which, for a group of subcommands, printed the help and
// succeeded. path is the command's name as typed ("announcer key").
func strict(path string, c *ffcli.Command) {
	for _, sub := range c.Subcommands {
		strict(path+" "+sub.Name, sub)
	}
	if len(c.Subcommands) == 0 {
		return
	}
	exec := c.Exec
	c.Exec = func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			_, parents, _ := strings.Cut(path, " ") // "key" of "announcer key"
			return Usagef("unknown command %q (see %s --help)", strings.TrimSpace(parents+" "+args[0]), path)
		}
		if exec == nil {
			return ffcli.NoExecError{Command: c}
		}
		return exec(ctx, args)
	}
}

// ExitCode prints err, if any, as one line on stderr, prefixed with the
// program's name, and returns the exit status: 0 for success or help, 2 for
// a usage mistake, 1 for any other failure.
func ExitCode(name string, err error) int {
	var nx ffcli.NoExecError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		os.Stderr.Write(UsageText.Bytes())
		return 0
	case errors.As(err, &nx):
		fmt.Fprintf(os.Stderr, "%s: %s needs a subcommand (see '%s %s -h')\n", name, nx.Command.Name, name, nx.Command.Name)
		return 2
	}
	msg := OneLine(err.Error())
	if m, ok := strings.CutPrefix(msg, "error parsing commandline arguments: "); ok {
		fmt.Fprintf(os.Stderr, "%s: %s (see -h)\n", name, m)
		return 2
	}
	fmt.Fprintf(os.Stderr, "%s: %s\n", name, msg)
	if errors.As(err, new(UsageError)) {
		return 2
	}
	return 1
}

// OneLine keeps a message on one line.
func OneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}
