package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// runSubscriber runs the subscriber binary to its end; for commands that
// return at once.
func runSubscriber(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(subscriberBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// TestUnknownCommand: a subcommand the subscriber lacks, or an argument it
// does not take, exits 2 with one line on stderr naming it, before any node
// starts.
func TestUnknownCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "none")
	unexpected := `subscriber: unexpected argument "frobnicate"`
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `subscriber: unknown command "frobnicate" (see subscriber --help)`},
		{[]string{"--data", dir, "frobnicate"}, `subscriber: unknown command "frobnicate" (see subscriber --help)`},
		{[]string{"follows", "--data", dir, "frobnicate"}, unexpected},
		{[]string{"version", "frobnicate"}, unexpected},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stdout, stderr, code := runSubscriber(t, tc.args...)
			if code != 2 || stdout != "" || stderr != tc.want+"\n" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2, stderr %q", code, stdout, stderr, tc.want)
			}
		})
	}
}

// TestVersion: "version" and "--version" print one line naming the
// program, the Go version and the target.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		stdout, stderr, code := runSubscriber(t, args...)
		line, rest, _ := strings.Cut(stdout, "\n")
		if code != 0 || rest != "" || stderr != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want one line on stdout", args, code, stdout, stderr)
		}
		for _, want := range []string{"subscriber ", " " + runtime.Version() + " ", runtime.GOOS + "/" + runtime.GOARCH} {
			if !strings.Contains(line, want) {
				t.Errorf("%v printed %q, lacking %q", args, line, want)
			}
		}
	}
}
