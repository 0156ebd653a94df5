// Package layering keeps the dependencies between the project's packages
// flowing one way (see DESIGN.md, "Packages"), as pebble's
// TestForbiddenImports does.
package layering

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/thingtracker/ttn/"

// forbidden lists, for each package, what it must not depend on, directly
// or not.
var forbidden = map[string][]string{
	"topics":  {"feed", "gossip", "node", "natsapi", "httpapi", "ttn", "github.com/cockroachdb/pebble", "github.com/nats-io", "github.com/libp2p/go-libp2p-pubsub", "github.com/hashicorp/memberlist"},
	"ttn":     {"feed", "gossip", "node", "natsapi", "httpapi", "github.com/cockroachdb/pebble"},
	"feed":    {"gossip", "node", "natsapi", "httpapi", "ttn", "github.com/libp2p/go-libp2p-pubsub", "github.com/hashicorp/memberlist"},
	"gossip":  {"feed", "node", "natsapi", "httpapi", "github.com/cockroachdb/pebble"},
	"natsapi": {"feed", "gossip", "node", "httpapi"},
	"httpapi": {"feed", "gossip", "node", "natsapi"},
}

func TestLayering(t *testing.T) {
	for pkg, banned := range forbidden {
		out, err := exec.Command("go", "list", "-deps", module+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range banned {
				target := b
				if !strings.Contains(b, ".") {
					target = module + b
				}
				if dep == target || strings.HasPrefix(dep, target+"/") {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
