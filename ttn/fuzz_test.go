package ttn

import (
	"bytes"
	"maps"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/thingtracker/ttn/topics"
)

// FuzzImport: whatever ParseDocument accepts keeps every x*Metadata member
// of the input, found by walking the input generically, at the same place
// with a semantically equal value, and adds none; and every Thing it returns
// passes Check. Every error is one line prefixed "ttn: ".
func FuzzImport(f *testing.F) {
	f.Add(readFile(f, specExample))
	for _, pattern := range []string{"testdata/*.json", "testdata/bad/*.json"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			f.Add(readFile(f, file))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := ParseDocument(data)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "ttn: ") || strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error %q: want one line prefixed \"ttn: \"", msg)
			}
			return
		}
		in := make(map[string]string)
		extMembers(t, "", data, in)

		out := make(map[string]string)
		b, err := json.Marshal(&doc.Info)
		if err != nil {
			t.Fatalf("accepted tracker info does not encode: %v", err)
		}
		extMembers(t, "", b, out)
		for i := range doc.Things {
			if err := doc.Things[i].Check(); err != nil {
				t.Fatalf("things[%d] fails Check: %v", i, err)
			}
			b, err := json.Marshal(&doc.Things[i])
			if err != nil {
				t.Fatalf("accepted things[%d] does not encode: %v", i, err)
			}
			extMembers(t, jsontext.Pointer("/things/"+strconv.Itoa(i)), b, out)
		}
		if len(out) != len(in) {
			t.Fatalf("input has %d x*Metadata members, output %d", len(in), len(out))
		}
		for key, want := range in {
			key = bomVariant.ReplaceAllString(key, "${1}xBomMetadata")
			got, ok := out[key]
			if !ok {
				t.Fatalf("x*Metadata member %q dropped", key)
			}
			if got != want {
				t.Fatalf("x*Metadata member %q: got %s, want %s", key, got, want)
			}
		}
		roundTrip(t, doc)
	})
}

// roundTrip checks that what Export writes of doc imports back to doc.
func roundTrip(t *testing.T, doc *Document) []byte {
	t.Helper()
	out, err := Export(doc.Info, doc.Things)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	again, err := ParseDocument(out)
	if err != nil {
		t.Fatalf("the export does not import: %v\n%s", err, out)
	}
	a, err := json.Marshal(doc, json.Deterministic(true))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(again, json.Deterministic(true))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("import → export → import changed the document:\n%s\n%s", a, b)
	}
	return out
}

// bomVariant matches the key of an xBOMMetadata member of a BOM entry, which
// import keeps under the name xBomMetadata.
var bomVariant = regexp.MustCompile(`^(/things/\d+/billOfMaterials/\d+\x00)xBOMMetadata$`)

// extMembers walks the JSON value v, found at ptr, and records each
// x*Metadata member in into, keyed by the pointer of its object, a NUL and
// its name, with its canonical value. An extension's own value is recorded
// whole: members nested in it are kept if it is.
func extMembers(t *testing.T, ptr jsontext.Pointer, v jsontext.Value, into map[string]string) {
	t.Helper()
	d := jsontext.NewDecoder(bytes.NewReader(v))
	tok, err := d.ReadToken()
	if err != nil {
		t.Fatalf("walking %s: %v", ptr, err)
	}
	switch tok.Kind() {
	case '{':
		for d.PeekKind() != '}' {
			tok, err := d.ReadToken()
			if err != nil {
				t.Fatalf("walking %s: %v", ptr, err)
			}
			name := tok.String() // before the token is voided
			val, err := d.ReadValue()
			if err != nil {
				t.Fatalf("walking %s: %v", ptr, err)
			}
			if topics.IsExtensionName(name) {
				into[string(ptr)+"\x00"+name] = canon(val)
				continue
			}
			extMembers(t, ptr.AppendToken(name), val, into)
		}
	case '[':
		for i := 0; d.PeekKind() != ']'; i++ {
			val, err := d.ReadValue()
			if err != nil {
				t.Fatalf("walking %s: %v", ptr, err)
			}
			extMembers(t, ptr.AppendToken(strconv.Itoa(i)), val, into)
		}
	}
}

// TestExtMembers checks the fuzz target's walker on the specification's
// example and on the document with x*Metadata at every level.
func TestExtMembers(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{specExample, []string{
			"/things/1/billOfMaterials/0\x00xBomMetadata",
			"/things/1/instructions/2\x00xInstructionMetadata",
		}},
		{"testdata/js-schema.json", []string{
			"\x00xTrackerMetadata",
			"/maintainers/0\x00xIdentityMetadata",
			"/things/0/billOfMaterials/0\x00xBOMMetadata",
		}},
		{"testdata/schema-json.json", []string{
			"\x00xTrackerMetadata",
			"/things/0\x00xPrintSettingsMetadata",
			"/things/0\x00xThingMetadata",
			"/things/0/authors/0\x00xIdentityMetadata",
			"/things/0/billOfMaterials/0\x00xBomMetadata",
			"/things/0/instructions/0\x00xInstructionMetadata",
			"/things/0/metadata\x00xSubmissionMetadata",
			"/things/0/metadata/submitter\x00xIdentityMetadata",
			"/things/0/relationships/0\x00xRelationshipMetadata",
			"/thingsCache\x00xThingsCacheMetadata",
			"/trackers/0\x00xTrackerRefMetadata",
		}},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			found := make(map[string]string)
			extMembers(t, "", readFile(t, tc.file), found)
			got := slices.Sorted(maps.Keys(found))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// FuzzReadThings: what ReadThings accepts is at least one Thing, each
// passing Check; every error is one line prefixed "ttn: ".
func FuzzReadThings(f *testing.F) {
	f.Add([]byte("{\"id\":\"a\",\"title\":\"A\"}\n{\"id\":\"b\",\"title\":\"B\",\"version\":0.0}\n"))
	f.Add([]byte("{\n  \"id\": \"a\",\n  \"title\": \"A\"\n}\n"))
	f.Add([]byte(`{"id":"a","title":"A"} {"id":"b"}`))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		things, err := ReadThings(bytes.NewReader(data), 1<<16)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "ttn: ") || strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error %q: want one line prefixed \"ttn: \"", msg)
			}
			return
		}
		if len(things) == 0 {
			t.Fatal("no things and no error")
		}
		for i := range things {
			if err := things[i].Check(); err != nil {
				t.Fatalf("thing %d fails Check: %v", i+1, err)
			}
		}
	})
}
