// Package wait is how the project's tests wait for a condition: polling,
// with a deadline, never a bare sleep.
package wait

import (
	"testing"
	"time"
)

// For calls cond every 20 ms until it returns nil, failing the test with
// cond's last error if it still fails after d.
func For(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
