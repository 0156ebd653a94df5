package httpapi_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if goroutines outlive them: every
// test closes what it opens, the HTTP server's goroutines included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// bleve's analysis workers (package search, through the node):
		// started once per process, at init, by design.
		goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"),
	)
}
