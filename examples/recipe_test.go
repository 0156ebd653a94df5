// Package examples holds the plugin examples; this test runs the shell
// recipe against a real node.
package examples

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/natsapi"
	"github.com/thingtracker/ttn/topics"
)

// TestShellRecipe runs nats-cli.sh, as its comment shows, against a node
// that requires a token. It needs the nats CLI, which .ci/run installs.
func TestShellRecipe(t *testing.T) {
	if _, err := exec.LookPath("nats"); err != nil {
		t.Skip("SKIP: the nats CLI is not on PATH (.ci/run installs it)")
	}
	ctx := context.Background()
	cfg := nodetest.Config(t)
	cfg.NATS = &natsapi.Config{Addr: "0", Token: "recipe-token"}
	n := nodetest.Start(t, cfg)
	tr, err := n.CreateTracker(ctx, topics.TrackerInfo{Name: "shell"}, false)
	if err != nil {
		t.Fatal(err)
	}
	recipe := func(env []string, args ...string) (string, error) {
		cmd := exec.Command("./nats-cli.sh", args...)
		cmd.Env = append(os.Environ(), append([]string{"NATS_URL=nats://" + n.NATSAddr()}, env...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return out.String(), err
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("nats-cli.sh %v did not finish", args)
			return "", nil
		}
	}
	token := []string{"NATS_TOKEN=recipe-token"}
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := recipe(token, args...)
		if err != nil {
			t.Fatalf("nats-cli.sh %v: %v\n%s", args, err, out)
		}
		return out
	}

	if out, err := recipe(nil, "status"); err == nil {
		t.Fatalf("status without the token worked:\n%s", out)
	}
	if out := mustRun("status"); !strings.Contains(out, `"node":"`+n.ID.ID+`"`) {
		t.Fatalf("status:\n%s", out)
	}

	// watch prints the next announcement. When its subscription is in
	// place cannot be seen from here: announce until it returns.
	watched := make(chan string, 1)
	go func() {
		out, _ := recipe(token, "watch", "1")
		watched <- out
	}()
	var out string
	for v := 1; out == ""; v++ {
		if _, err := n.Publish(ctx, tr.ID, []topics.Thing{{ID: "shelf", Title: "Shelf", Version: fmt.Sprint(v)}}); err != nil {
			t.Fatal(err)
		}
		select {
		case out = <-watched:
		case <-time.After(200 * time.Millisecond):
			if v > 100 {
				t.Fatal("watch saw nothing in 20 s")
			}
		}
	}
	for _, want := range []string{"ttn.ann." + tr.ID.String() + ".thing", "Ttn-Envelope", "Ttn-Cursor", `"title":"Shelf"`} {
		if !strings.Contains(out, want) {
			t.Errorf("watch output lacks %q:\n%s", want, out)
		}
	}
	thing := filepath.Join(t.TempDir(), "thing.json")
	os.WriteFile(thing, []byte(`{"id":"bracket","title":"Shelf bracket","version":"3","tags":["shelf"]}`), 0o600)
	if out := mustRun("publish", tr.ID.String(), thing); !strings.Contains(out, `"new":true`) {
		t.Fatalf("publish:\n%s", out)
	}
	if out := mustRun("things", "shelf"); !strings.Contains(out, `"title":"Shelf bracket"`) {
		t.Fatalf("things:\n%s", out)
	}
	if out := mustRun("thing", tr.ID.String(), "bracket"); !strings.Contains(out, `"latest":"3"`) {
		t.Fatalf("thing:\n%s", out)
	}
	if out := mustRun("history", "0"); !strings.Contains(out, `"cursor":1,`) {
		t.Fatalf("history:\n%s", out)
	}
	if out := mustRun("service"); !strings.Contains(out, "ttn.api.publish") {
		t.Fatalf("service:\n%s", out)
	}
	if out, err := recipe(token, "things", `x"}`); err == nil {
		t.Fatalf("a tag with a quote was sent:\n%s", out)
	}
}
