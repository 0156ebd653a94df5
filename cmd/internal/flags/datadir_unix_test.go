//go:build unix && !darwin

package flags

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultDataDir(t *testing.T) {
	for _, tc := range []struct {
		name   string
		xdg    string // XDG_DATA_HOME; "HOME/…" is under the home dir
		legacy bool   // ~/.ttn exists
		want   string // "HOME/…" is under the home dir
	}{
		{"XDG unset", "", false, "HOME/.local/share/ttn"},
		{"XDG set", "/srv/data", false, "/srv/data/ttn"},
		{"XDG relative: ignored", "data", false, "HOME/.local/share/ttn"},
		{"~/.ttn kept", "/srv/data", true, "HOME/.ttn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			t.Setenv("HOME", home)
			t.Setenv("XDG_DATA_HOME", tc.xdg)
			if tc.legacy {
				if err := os.Mkdir(filepath.Join(home, ".ttn"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			want := tc.want
			if rest, ok := strings.CutPrefix(want, "HOME/"); ok {
				want = filepath.Join(home, rest)
			}
			if got := DefaultDataDir(); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
	t.Run("no home", func(t *testing.T) {
		t.Setenv("HOME", "")
		t.Setenv("XDG_DATA_HOME", "")
		if got := DefaultDataDir(); got != "ttn-data" {
			t.Errorf("got %q, want ttn-data", got)
		}
	})
}
