package ttn

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/thingtracker/ttn/internal/ttnschema"
)

// TestExport: every document import accepts (the spec's example and each
// variant in testdata) exports to a document that imports back unchanged
// and validates against the specification's schema.json, unless what it
// keeps verbatim cannot (an x*Metadata member that is not an object, as
// two test documents have; a version that is not a number).
func TestExport(t *testing.T) {
	schema, err := ttnschema.Load()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range append(files, specExample) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			doc, err := ParseDocument(readFile(t, file))
			if err != nil {
				t.Fatal(err)
			}
			out := roundTrip(t, doc)
			err = ttnschema.Validate(schema, out)
			switch file {
			case specExample, "testdata/js-schema.json", "testdata/empty.json":
				if err != nil {
					t.Fatalf("export does not validate: %v\n%s", err, out)
				}
			default:
				if err == nil {
					return
				}
				// Every cause must be a kept x*Metadata value.
				for _, line := range strings.Split(err.Error(), "\n")[1:] {
					if !strings.Contains(line, "Metadata': got") {
						t.Fatalf("export does not validate: %v\n%s", err, out)
					}
				}
			}
		})
	}
}
