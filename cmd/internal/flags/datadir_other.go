//go:build !unix && !windows

package flags

import (
	"os"
	"path/filepath"
)

// osDataDir is ~/ttn on systems with no convention of ours (none of the
// release targets).
func osDataDir() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "ttn"), nil
}
