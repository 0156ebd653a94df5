// Package ttnschema holds the TTN specification's reference data (spec/,
// copied unchanged from its public repository: see spec/README.md) and
// checks documents against the specification's own schema with a
// JSON-schema library. Tests use it; nothing the node runs does.
//
// The schema is written in draft 3 ("required": true on a property), which
// current libraries no longer read: Load rewrites exactly that into draft 4
// (the property's name in its parent's "required" list) and changes nothing
// else.
package ttnschema

import (
	"bytes"
	_ "embed"
	"fmt"
	"maps"
	"slices"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	//go:embed spec/schema.json
	schemaJSON []byte
	//go:embed spec/example-tracker.json
	example []byte
)

// Example returns the specification's example tracker document (a copy).
func Example() []byte { return bytes.Clone(example) }

// Load compiles the specification's schema.
func Load() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, err
	}
	draft4(doc)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	const url = "https://thingtracker.net/schema.json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

// draft4 moves each draft-3 "required": true into its parent's list.
func draft4(v any) {
	switch n := v.(type) {
	case map[string]any:
		if props, ok := n["properties"].(map[string]any); ok {
			var required []any
			for _, name := range slices.Sorted(maps.Keys(props)) {
				if p, ok := props[name].(map[string]any); ok {
					if r, ok := p["required"].(bool); ok {
						delete(p, "required")
						if r {
							required = append(required, name)
						}
					}
				}
			}
			if len(required) > 0 {
				n["required"] = required
			}
		}
		for _, c := range n {
			draft4(c)
		}
	case []any:
		for _, c := range n {
			draft4(c)
		}
	}
}

// Validate checks a JSON document against the schema.
func Validate(s *jsonschema.Schema, doc []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(v)
}
