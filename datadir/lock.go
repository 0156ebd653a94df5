package datadir

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/gofrs/flock"
)

// ErrDirInUse is returned when another process owns the data dir.
var ErrDirInUse = errors.New("datadir: data dir in use by another process")

// lock takes the exclusive lock of dir (flock on Unix, LockFileEx on
// Windows), released by Unlock or when the process exits however it exits.
func lock(dir string) (*flock.Flock, error) {
	l := flock.New(filepath.Join(dir, lockFile), flock.SetPermissions(0o600))
	ok, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if !ok {
		return nil, fmt.Errorf("%s: %w", dir, ErrDirInUse)
	}
	return l, nil
}
