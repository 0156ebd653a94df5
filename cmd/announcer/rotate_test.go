package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/thingtracker/ttn/datadir"
)

// phraseOf returns the recovery phrase in a command's output.
func phraseOf(t *testing.T, out string) string {
	t.Helper()
	var words []string
	for _, l := range textLines(out) {
		if w, ok := strings.CutPrefix(l, "recovery "); ok {
			words = append(words, strings.Fields(w)...)
		}
	}
	if len(words) != 24 {
		t.Fatalf("no recovery phrase in %q", out)
	}
	return strings.Join(words, " ")
}

// TestKeyRotate: 'announcer key rotate' takes the phrase on standard input,
// refuses a wrong, malformed or spent one in one line without changing
// anything, and otherwise keeps the node ID, prints the next phrase once
// and signs on with the new key.
func TestKeyRotate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	phrase := phraseOf(t, ok(t, "", "init", "--data", dir))
	tracker := strings.TrimSpace(ok(t, "", "tracker", "create", "--data", dir, "--name", "designs"))
	ok(t, `{"id":"clip","title":"Cable clip","version":"1"}`, "publish", "--data", dir, "--tracker", tracker, "-")
	// The status but for the bytes on disk, which Pebble's own work moves.
	status := func() string {
		var keep []string
		for _, l := range textLines(ok(t, "", "status", "--data", dir)) {
			if !strings.Contains(l, "bytes on disk") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	before := status()

	other, _, err := datadir.NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ stdin, why string }{
		"wrong phrase":     {other, "not the one this node committed to"},
		"not a phrase":     {"correct horse battery staple", "not a recovery phrase"},
		"a bad reason too": {phrase, "--reason"},
	} {
		args := []string{"key", "rotate", "--data", dir, "-"}
		if name == "a bad reason too" {
			args = []string{"key", "rotate", "--data", dir, "--reason", "bored", "-"}
		}
		r := run(t, tc.stdin, nil, args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.why) || len(textLines(r.stderr)) != 1 || r.stdout != "" {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if after := status(); after != before {
		t.Fatalf("a refused rotation changed the status:\n%s\nthen\n%s", before, after)
	}

	out := ok(t, phrase, "key", "rotate", "--data", dir, "-")
	next := phraseOf(t, out)
	if !strings.HasPrefix(out, "rotated ") || !strings.Contains(out, "\nkey ") || next == phrase {
		t.Fatalf("rotate printed %q", out)
	}
	st := status()
	if textLines(st)[0] != textLines(before)[0] || !strings.Contains(st, "after 1 rotation") {
		t.Fatalf("status after the rotation:\n%s", st)
	}
	if r := run(t, phrase, nil, "key", "rotate", "--data", dir, "-"); r.code == 0 || !strings.Contains(r.stderr, "spent") {
		t.Errorf("the spent phrase again: %+v", r)
	}
	ok(t, `{"id":"clip","title":"Cable clip","version":"2"}`, "publish", "--data", dir, "--tracker", tracker, "-")
	// The next phrase rotates again.
	ok(t, next, "key", "rotate", "--data", dir, "--reason", "routine", "-")
}

func textLines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }
