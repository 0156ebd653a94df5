package ttnschema

import "testing"

// TestSpecExample: the specification's example validates against its
// schema, and a document missing what the schema requires does not.
func TestSpecExample(t *testing.T) {
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(s, Example()); err != nil {
		t.Fatalf("the spec's example: %v", err)
	}
	for _, bad := range []string{
		`{"id":"x"}`,                                   // no things
		`{"id":"x","things":[{"id":"a"}]}`,             // a Thing without title
		`{"id":"x","version":"1","things":[]}`,         // version is a number in schema.json
		`{"id":"x","things":[],"maintainers":[{}]}`,    // a maintainer without name
		`{"id":"x","things":[],"updated":"yesterday"}`, // not a date
	} {
		if err := Validate(s, []byte(bad)); err == nil {
			t.Errorf("%s validates", bad)
		}
	}
}
