package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestPublishUnknownParent: publish refuses, in one line and announcing
// nothing, a Thing whose parent this node does not hold, unless
// --allow-unknown-parent.
func TestPublishUnknownParent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	ok(t, "", "init", "--data", dir)
	tracker := strings.TrimSpace(ok(t, "", "tracker", "create", "--data", dir, "--name", "designs"))
	before := len(entries(t, dir))
	child := `{"id":"child","title":"Child","version":"1","parents":[{"thing":"typo","version":"1"}]}`
	r := run(t, child, nil, "publish", "--data", dir, "--tracker", tracker, "-")
	if r.code != 1 || !strings.Contains(r.stderr, "does not hold") || len(textLines(r.stderr)) != 1 || r.stdout != "" {
		t.Fatalf("an unknown parent: %+v", r)
	}
	if n := len(entries(t, dir)); n != before {
		t.Fatalf("the refused publish changed the log: %d entries, %d before", n, before)
	}
	ok(t, child, "publish", "--data", dir, "--tracker", tracker, "--allow-unknown-parent", "-")
}
