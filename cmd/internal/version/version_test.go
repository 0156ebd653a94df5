package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}
	for _, tc := range []struct {
		name     string
		override stamp
		bi       *debug.BuildInfo
		want     string
	}{
		{"no build info", stamp{}, nil, "announcer unknown go1.26.8 linux/arm64"},
		{"go install @version", stamp{}, &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}},
			"announcer v1.2.3 go1.26.8 linux/arm64"},
		{"checkout, clean", stamp{}, &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"},
			Settings: []debug.BuildSetting{rev, {Key: "vcs.modified", Value: "false"}}},
			"announcer v1.2.3 commit 0123456789ab go1.26.8 linux/arm64"},
		{"checkout, modified", stamp{}, &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{rev, {Key: "vcs.modified", Value: "true"}}},
			"announcer (devel) commit 0123456789ab (modified) go1.26.8 linux/arm64"},
		{"stamped by the release script", stamp{"v2.0.0-rc1", "fedcba9876543210", "true"},
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{rev}},
			"announcer v2.0.0-rc1 commit fedcba987654 (modified) go1.26.8 linux/arm64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := format("announcer", tc.override, tc.bi, "go1.26.8", "linux/arm64"); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestString: the test binary has build info; its line names the Go
// version and the target it runs on, on one line.
func TestString(t *testing.T) {
	got := String("x")
	for _, want := range []string{"x ", runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	if strings.ContainsAny(got, "\r\n") {
		t.Errorf("%q is not one line", got)
	}
}
