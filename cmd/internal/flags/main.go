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
	"syscall"

	"github.com/peterbourgon/ff/v3/ffcli"
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
// SIGINT or SIGTERM cancels it, and exits with ExitCode's status.
func Main(name string, root *ffcli.Command) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root.ParseAndRun(ctx, os.Args[1:])
	stop()
	os.Exit(ExitCode(name, err))
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
