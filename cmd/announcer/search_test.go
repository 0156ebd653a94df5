package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/thingtracker/ttn/view"
)

// searchJSON runs announcer search --format json and decodes its result.
func searchJSON(t *testing.T, dir string, args ...string) view.SearchResult {
	t.Helper()
	out := ok(t, "", append([]string{"search", "--data", dir, "--format", "json"}, args...)...)
	var res view.SearchResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("search %v: %v\n%s", args, err, out)
	}
	return res
}

// TestSearchCommand: announcer search works offline (opening DIR/index and
// catching it up with the log, as it grows) and through a running node;
// reindex rebuilds the index either way; bad flags exit 2.
func TestSearchCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "me")
	ok(t, "", "init", "--data", dir)
	tr := strings.TrimSpace(ok(t, "", "tracker", "create", "--data", dir, "--name", "tools"))
	ok(t, `{"id":"saw","title":"Coping saw","version":"1","tags":["Wood"],"licenses":["MIT"]}`, "publish", "--data", dir, "--tracker", tr, "-")

	// Offline: the first search builds the index from the log.
	res := searchJSON(t, dir, "coping")
	if res.Total != 1 || len(res.Hits) != 1 || res.Hits[0].ID != "saw" || res.Hits[0].Trust != "self" {
		t.Fatalf("offline search: %+v", res)
	}
	// What the log gains offline is found by the next search.
	ok(t, `{"id":"plane","title":"Block plane","version":"1","tags":["wood"],"licenses":["CC0-1.0"]}`, "publish", "--data", dir, "--tracker", tr, "-")
	res = searchJSON(t, dir, "--tag", "WOOD")
	if res.Total != 2 || len(res.Facets.Licence) != 2 || res.Behind != 0 {
		t.Fatalf("offline search after a publish: %+v", res)
	}
	text := ok(t, "", "search", "--data", dir, "--licence", "cc0-1.0", "plane")
	if !strings.Contains(text, "Block plane") || !strings.Contains(text, "1 matching") || !strings.Contains(text, "tracker: "+tr+" (tools) 1") {
		t.Fatalf("text output:\n%s", text)
	}
	if r := run(t, "", nil, "reindex", "--data", dir); r.code != 0 || !strings.Contains(r.stderr, "offline") {
		t.Fatalf("reindex offline: %+v", r)
	}

	// Through a running node.
	startNode(t, dir)
	ok(t, `{"id":"rasp","title":"Cabinet rasp","version":"1"}`, "publish", "--data", dir, "--tracker", tr, "-")
	if r := run(t, "", nil, "reindex", "--data", dir); r.code != 0 || !strings.Contains(r.stderr, "running node") {
		t.Fatalf("reindex through the node: %+v", r)
	}
	res = searchJSON(t, dir, "tools") // the tracker's name
	if res.Total != 3 {
		t.Fatalf("search through the node: %+v", res)
	}

	for _, args := range [][]string{
		{"search", "--data", dir, "--bogus", "x"},
		{"search", "--data", dir, "--limit", "500", "x"},
		{"search", "--data", dir, "--author", "me", "x"},
		{"search", "--data", dir, "--tracker", "nope", "x"},
		{"search", "--data", dir, "--format", "yaml", "x"},
		{"reindex", "--data", dir, "extra"},
	} {
		if r := run(t, "", nil, args...); r.code != 2 || r.stdout != "" {
			t.Errorf("%v: %+v, want exit 2 and nothing on stdout", args, r)
		}
	}
	for _, args := range [][]string{{"search", "-h"}, {"reindex", "-h"}} {
		if r := run(t, "", nil, args...); r.code != 0 || !strings.Contains(r.stderr, "USAGE") {
			t.Errorf("%v: %+v", args, r)
		}
	}
}
