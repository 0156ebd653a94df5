package flags

import (
	"path/filepath"
	"testing"
)

func TestDefaultDataDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	if got, want := DefaultDataDir(), filepath.Join(home, "Library", "Application Support", "TTN"); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
