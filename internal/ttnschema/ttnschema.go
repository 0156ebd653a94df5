// Package ttnschema checks documents against the TTN specification's own
// schema (../shared/ttn-spec/schema.json) with a JSON-schema library. Tests
// use it; nothing the node runs does.
//
// The schema is written in draft 3 ("required": true on a property), which
// current libraries no longer read: Load rewrites exactly that into draft 4
// (the property's name in its parent's "required" list) and changes nothing
// else.
package ttnschema

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Path is where the specification's schema is, from this package's
// directory.
func Path() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "ttn-spec", "schema.json")
}

// Load compiles the specification's schema.
func Load() (*jsonschema.Schema, error) {
	b, err := os.ReadFile(Path())
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
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
