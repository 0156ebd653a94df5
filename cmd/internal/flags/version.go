package flags

import (
	"context"
	"flag"
	"fmt"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/thingtracker/ttn/cmd/internal/version"
)

// VersionCommand returns the "version" subcommand of the program name: it
// prints the same line as "NAME --version".
func VersionCommand(name string) *ffcli.Command {
	fs := flag.NewFlagSet(name+" version", flag.ContinueOnError)
	fs.SetOutput(&UsageText)
	return &ffcli.Command{
		Name:       "version",
		ShortUsage: name + " version",
		ShortHelp:  "Print the version: module version, commit, Go version, OS/architecture.",
		LongHelp: `Prints one line: the module version (vX.Y.Z for a release or 'go install
…@vX.Y.Z'), the VCS commit it was built from and whether the tree had local
changes, the Go version, and the OS/architecture. "` + name + ` --version" prints
the same.`,
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if len(args) > 0 {
				return Usagef("unexpected argument %q", args[0])
			}
			fmt.Println(version.String(name))
			return nil
		},
	}
}
