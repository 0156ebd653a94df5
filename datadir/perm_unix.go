//go:build unix

package datadir

import (
	"fmt"
	"io/fs"
	"os"
)

// makePrivate creates dir with mode 0700, or tightens an existing one to it.
func makePrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return nil
}

// privateFile makes a file the process just created readable by its owner
// only (mode 0600).
func privateFile(f *os.File) error { return f.Chmod(0o600) }

// checkPrivate refuses a file that others can read or write, as ssh does.
func checkPrivate(path string, st fs.FileInfo) error {
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("key file %s is accessible by others (mode %04o); run 'chmod 600 %s'", path, st.Mode().Perm(), path)
	}
	return nil
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
