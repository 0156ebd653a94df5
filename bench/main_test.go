package bench

import (
	"io"
	"log/slog"
	"os"
	"testing"
)

// TestMain runs the benchmarks, or, when the Sybil flood benchmark re-runs
// this binary as its indexer (indexerDirEnv set), the indexer.
func TestMain(m *testing.M) {
	if dir := os.Getenv(indexerDirEnv); dir != "" {
		os.Exit(runIndexer(dir))
	}
	os.Exit(m.Run())
}

// slogWarn logs warnings and errors to w.
func slogWarn(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
