package feed

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if goroutines outlive them: every
// test closes what it opens, the Pebble log's goroutines included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
