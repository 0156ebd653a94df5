// Package layering keeps the dependencies between the project's packages
// flowing one way (see DESIGN.md, "Packages"), as pebble's
// TestForbiddenImports does.
package layering

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/thingtracker/ttn/"

// forbidden lists, for each package, what it must not depend on, directly
// or not.
var forbidden = map[string][]string{
	// pure: what travels on the network, and the shapes shown of it
	"topics": slices.Concat(engines, []string{"ttn", "view", "control", "github.com/cockroachdb/pebble", "github.com/nats-io", "github.com/hashicorp/memberlist"}),
	"view":   slices.Concat(engines, []string{"ttn", "control", "github.com/cockroachdb/pebble", "github.com/nats-io", "github.com/hashicorp/memberlist"}),
	"ttn":    slices.Concat(engines, []string{"control", "github.com/cockroachdb/pebble"}),
	// pure computation: trust levels from records, nothing of the project's
	"trust": slices.Concat(engines, []string{"topics", "view", "ttn", "datadir", "control", "natsapi", "httpapi", "github.com/cockroachdb/pebble", "github.com/nats-io", "github.com/hashicorp/memberlist", "github.com/libp2p"}),
	// engines
	"feed":    {"gossip", "node", "datadir", "control", "natsapi", "httpapi", "ttn", "github.com/libp2p/go-libp2p-pubsub", "github.com/hashicorp/memberlist"},
	"gossip":  {"feed", "node", "datadir", "control", "natsapi", "httpapi", "view", "github.com/cockroachdb/pebble"},
	"datadir": {"gossip", "node", "control", "natsapi", "httpapi", "github.com/libp2p/go-libp2p-pubsub", "github.com/hashicorp/memberlist", "github.com/nats-io"},
	// the CLI's channel to a running node, or to the dir itself
	"control": {"gossip", "node", "natsapi", "httpapi", "github.com/libp2p/go-libp2p-pubsub", "github.com/hashicorp/memberlist"},
	// the full-text index: it declares the Source it reads; node implements it
	"search": {"feed", "gossip", "node", "datadir", "control", "natsapi", "httpapi", "github.com/hashicorp/memberlist", "github.com/nats-io"},
	// front ends: they declare what they consume; node implements it
	"natsapi": slices.Concat(engines, []string{"datadir", "control", "httpapi"}),
	"httpapi": slices.Concat(engines, []string{"datadir", "control", "natsapi", "web"}),
	"web":     slices.Concat(engines, []string{"datadir", "control", "natsapi", "httpapi", "github.com/cockroachdb/pebble", "github.com/nats-io", "github.com/hashicorp/memberlist"}),
}

// engines are the packages that keep state and do I/O (and what runs
// them): front ends reach them only through the interfaces they declare.
var engines = []string{"feed", "gossip", "node", "github.com/libp2p/go-libp2p-pubsub"}

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
