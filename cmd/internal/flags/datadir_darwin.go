package flags

import (
	"os"
	"path/filepath"
)

// osDataDir is ~/Library/Application Support/TTN, where macOS keeps an
// application's data (Apple's File System Programming Guide).
func osDataDir() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "Library", "Application Support", "TTN"), nil
}
