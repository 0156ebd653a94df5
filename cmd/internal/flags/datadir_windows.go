package flags

import (
	"errors"
	"os"
	"path/filepath"
)

// osDataDir is %LocalAppData%\TTN: per user and per machine, not roaming,
// since the log can be large and the identity belongs to this node.
func osDataDir() (string, error) {
	dir := os.Getenv("LocalAppData")
	if dir == "" {
		return "", errors.New("flags: %LocalAppData% is not set")
	}
	return filepath.Join(dir, "TTN"), nil
}
