// Package version says which build of a command is running: module
// version, VCS commit, Go version and target, read from the build info the
// Go toolchain embeds in every binary (runtime/debug.ReadBuildInfo).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set at link time, Version, Commit and Modified override the build info;
// scripts/release.sh sets them:
//
//	go build -ldflags "-X github.com/thingtracker/ttn/cmd/internal/version.Version=v1.2.3 ..."
//
// Empty (the default), the build info decides. Its module version is
// vX.Y.Z for 'go install …@vX.Y.Z', a pseudo-version or "(devel)" for a
// build in a checkout. Its commit comes from the checkout (go build
// -buildvcs), but not in a git worktree (golang/go#58218) nor where
// GOFLAGS has -buildvcs=false: hence the overrides.
var (
	Version  string // vX.Y.Z
	Commit   string // the full VCS commit hash
	Modified string // "true" when built from a tree with uncommitted changes
)

// String returns the one-line version of the program name, e.g.
//
//	announcer v1.2.3 commit 0123456789ab (modified) go1.26.8 linux/arm64
func String(name string) string {
	bi, _ := debug.ReadBuildInfo() // nil without build info: "unknown"
	return format(name, stamp{Version, Commit, Modified}, bi, runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
}

// stamp is what the linker set.
type stamp struct{ version, commit, modified string }

// format is String with its inputs explicit, for tests.
func format(name string, override stamp, bi *debug.BuildInfo, goVersion, target string) string {
	version, commit, modified := "unknown", "", false
	if bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if override.version != "" {
		version = override.version
	}
	if override.commit != "" {
		commit, modified = override.commit, override.modified == "true"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", name, version)
	if commit != "" {
		fmt.Fprintf(&b, " commit %.12s", commit)
		if modified {
			b.WriteString(" (modified)")
		}
	}
	fmt.Fprintf(&b, " %s %s", goVersion, target)
	return b.String()
}
