// Package racebuild tells whether the race detector is on, so that the
// process-level tests build the binaries they drive the way they themselves
// were built: a test run with -race runs race-checked commands.
package racebuild

// BuildFlags returns the go build flags that match this binary's.
func BuildFlags() []string {
	if Enabled {
		return []string{"-race"}
	}
	return nil
}
