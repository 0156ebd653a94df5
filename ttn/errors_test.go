package ttn

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkError fails unless err is one line, prefixed "ttn: ", containing want.
func checkError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", want)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "ttn: ") || strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error %q: want one line prefixed \"ttn: \"", msg)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("got error %q, want it to contain %q", msg, want)
	}
}

func TestBadDocuments(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"duplicate-key.json", `duplicate object member name`},
		{"miscased-key.json", `ttn: things[1]: unknown member "Title" (did you mean "title"?)`},
		{"case-pair.json", `object names "title" and "Title" differ only in case`},
		{"missing-title.json", `ttn: things[0]: thing.title is required`},
		{"missing-id.json", `ttn: document "id" is required`},
		{"both-trackers-count.json", `ttn: both "trackersCount" and "trackers-count" are present`},
		{"both-traversal-depth.json", `both "trackersTraversalDepth" and "trackersTraversal-depth" are present`},
		{"both-images.json", `ttn: things[0].instructions[0]: both "imageUrls" and "images" are present`},
		{"both-thumbnail.json", `object names "thumbnailUrl" and "thumbnailURL" differ only in case`},
		{"both-bom-metadata.json", `object names "xBomMetadata" and "xBOMMetadata" differ only in case`},
		{"unknown-member.json", `ttn: things[0]: unknown member "rating"`},
		{"wrong-type.json", `ttn: things[0].tags: want an array, got a string`},
		{"count-not-number.json", `ttn: thingsCount: want a number, got an object`},
	}
	files, err := filepath.Glob("testdata/bad/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !slices.ContainsFunc(tests, func(tc struct{ file, want string }) bool { return tc.file == filepath.Base(f) }) {
			t.Errorf("%s has no test case", f)
		}
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			_, err := ParseDocument(readFile(t, filepath.Join("testdata", "bad", tc.file)))
			checkError(t, err, tc.want)
		})
	}
}

func TestDocumentErrors(t *testing.T) {
	thing := func(members string) string {
		return `{"id":"t","things":[{"id":"a","title":"A"` + members + `}]}`
	}
	for _, tc := range []struct {
		name string
		doc  string
		want string
	}{
		{"empty input", ``, `ttn: truncated JSON`},
		{"not an object", `[]`, `ttn: want a JSON object, got an array`},
		{"two values", `{"id":"t"} {}`, `data after the JSON value`},
		{"invalid UTF-8", "{\"id\":\"\xff\"}", `invalid UTF-8`},
		{"empty id", `{"id":""}`, `ttn: document "id" is required`},
		{"id not a string", `{"id":7}`, `ttn: id: want a string, got a number`},
		{"version boolean", `{"id":"t","version":true}`, `ttn: version: want a string or a number, got a boolean`},
		{"version too long", `{"id":"t","version":"` + strings.Repeat("9", 65) + `"}`, `ttn: tracker_info.version is 65 bytes`},
		{"things object", `{"id":"t","things":{}}`, `ttn: things: want an array, got an object`},
		{"thing null", `{"id":"t","things":[null]}`, `ttn: things[0]: want an object, got null`},
		{"thing without id", `{"id":"t","things":[{"title":"A"}]}`, `ttn: things[0]: thing.id is required`},
		{"empty thing version", thing(`,"version":""`), `ttn: things[0]: thing.version is required`},
		{"tag not a string", thing(`,"tags":["a",1]`), `ttn: things[0].tags[1]: want a string, got a number`},
		{"unknown tracker member", `{"id":"t","name":"n"}`, `ttn: unknown member "name"`},
		{"mis-cased variant", `{"id":"t","Trackers-Count":1}`, `unknown member "Trackers-Count" (did you mean "trackersCount"?)`},
		{"mis-cased in BOM", thing(`,"billOfMaterials":[{"PartNumber":"1"}]`),
			`ttn: things[0].billOfMaterials[0]: unknown member "PartNumber" (did you mean "partNumber"?)`},
		{"mis-cased extension", thing(`,"XThingMetadata":{}`), `unknown member "XThingMetadata" (did you mean "xThingMetadata"?)`},
		{"not an extension name", thing(`,"xthingMetadata":{}`), `ttn: things[0]: unknown member "xthingMetadata"`},
		{"extension in parents", thing(`,"parents":[{"thing":"p","xNoteMetadata":1}]`), `ttn: things[0].parents[0]: unknown member "xNoteMetadata"`},
		{"bad parent announcement", thing(`,"parents":[{"thing":"p","announcement":"zz"}]`), `ttn: things[0].parents[0].announcement: announcement id "zz"`},
		{"parent without thing", thing(`,"parents":[{"version":"1"}]`), `ttn: things[0]: thing.parents[0].thing is required`},
		{"tracker ref without url", `{"id":"t","trackers":[{"id":"x"}]}`, `ttn: tracker_info.trackers[0].url is required`},
		{"bad sha256", thing(`,"billOfMaterials":[{"sha256":"ABC"}]`), `ttn: things[0]: thing.billOfMaterials[0].sha256 is not 64 lowercase hex digits`},
		{"fractional size", thing(`,"billOfMaterials":[{"size":1.5}]`), `ttn: things[0].billOfMaterials[0].size: want an integer, got 1.5`},
		{"quantity out of range", thing(`,"billOfMaterials":[{"quantity":1e400}]`), `ttn: things[0].billOfMaterials[0].quantity: number 1e400 is out of range`},
		{"extension too large", thing(`,"xThingMetadata":"` + strings.Repeat("x", 16<<10) + `"`), `ttn: things[0]: thing.xThingMetadata is 16386 bytes, over the 16384 byte limit`},
		{"long unknown name clipped", thing(`,"` + strings.Repeat("n", 100) + `":1`), `unknown member "` + strings.Repeat("n", 64) + `…"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDocument([]byte(tc.doc))
			checkError(t, err, tc.want)
		})
	}
}

func TestThingErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{"no title", `{"id":"a"}`, `ttn: thing.title is required`},
		{"mis-cased title", `{"id":"a","Title":"A"}`, `ttn: unknown member "Title" (did you mean "title"?)`},
		{"both variants", `{"id":"a","title":"A","instructions":[{"images":[],"imageUrls":[]}]}`,
			`ttn: instructions[0]: both "images" and "imageUrls" are present`},
		{"duplicate", `{"id":"a","id":"b","title":"A"}`, `duplicate object member name`},
		{"document members", `{"id":"a","title":"A","thingsCount":1}`, `ttn: unknown member "thingsCount"`},
		{"array", `[{"id":"a","title":"A"}]`, `ttn: want a JSON object, got an array`},
		{"numeric version", `{"id":"a","title":"A","version":1.10}`, `ttn: version: want a string, as in "version": "1.10", not a number`},
		{"control character in id", `{"id":"a\u001b[2J","title":"A"}`, `ttn: thing.id holds a control character (U+001B at byte 1)`},
		{"line break in title", `{"id":"a","title":"A\nB"}`, `ttn: thing.title holds a control character (U+000A at byte 1)`},
		{"escape in description", `{"id":"a","title":"A","description":"x\u0007"}`, `ttn: thing.description holds a control character (U+0007 at byte 1)`},
		{"C1 in a tag", `{"id":"a","title":"A","tags":["\u009b"]}`, `ttn: thing.tags[0] holds a control character (U+009B at byte 0)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseThing([]byte(tc.in))
			checkError(t, err, tc.want)
		})
	}
}
