//go:build unix && !darwin

package flags

import (
	"errors"
	"os"
	"path/filepath"
)

// osDataDir follows the XDG Base Directory specification: $XDG_DATA_HOME/ttn,
// or ~/.local/share/ttn when XDG_DATA_HOME is unset or not absolute (the
// specification says to ignore a relative one). A ~/.ttn that exists, the
// default of earlier versions, is kept, so an existing node keeps its
// identity and log.
func osDataDir() (string, error) {
	home, _ := os.UserHomeDir()
	if home != "" {
		legacy := filepath.Join(home, ".ttn")
		if st, err := os.Stat(legacy); err == nil && st.IsDir() {
			return legacy, nil
		}
	}
	if x := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "ttn"), nil
	}
	if home == "" {
		return "", errors.New("flags: no home directory")
	}
	return filepath.Join(home, ".local", "share", "ttn"), nil
}
