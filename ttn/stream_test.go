package ttn

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestReadThings(t *testing.T) {
	pretty := `{
  "id": "gear",
  "title": "Gear",
  "version": "2.0",
  "tags": [
    "fun"
  ]
}
`
	ndjson := `{"id":"a","title":"A"}
{"id":"b","title":"B","version":"7"}
{"id":"c","title":"C","instructions":[{"images":["c.png"]}]}
`
	for _, tc := range []struct {
		name     string
		in       string
		maxBytes int64
		want     []string // id@version of each thing
	}{
		{"one pretty-printed object", pretty, 1 << 20, []string{"gear@2.0"}},
		{"ndjson of 3", ndjson, 1 << 20, []string{"a@1", "b@7", "c@1"}},
		{"ndjson without final newline", strings.TrimSpace(ndjson), 1 << 20, []string{"a@1", "b@7", "c@1"}},
		{"space separated", `{"id":"a","title":"A"} {"id":"b","title":"B"}`, 1 << 20, []string{"a@1", "b@1"}},
		{"crlf", "{\"id\":\"a\",\"title\":\"A\"}\r\n{\"id\":\"b\",\"title\":\"B\"}\r\n", 1 << 20, []string{"a@1", "b@1"}},
		{"exactly maxBytes", `{"id":"a","title":"A"}`, int64(len(`{"id":"a","title":"A"}`)), []string{"a@1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			things, err := ReadThings(strings.NewReader(tc.in), tc.maxBytes)
			if err != nil {
				t.Fatalf("ReadThings: %v", err)
			}
			var got []string
			for _, th := range things {
				got = append(got, th.ID+"@"+th.Version)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadThingsErrors(t *testing.T) {
	good := `{"id":"a","title":"A"}` + "\n"
	for _, tc := range []struct {
		name     string
		r        io.Reader
		maxBytes int64
		want     string
		is       error
	}{
		{"empty", strings.NewReader(""), 1 << 20, "ttn: no things", ErrNoThings},
		{"only space", strings.NewReader(" \n\t\n"), 1 << 20, "ttn: no things", ErrNoThings},
		{"bad second object", strings.NewReader(good + `{"id":"b"}` + "\n" + good), 1 << 20,
			"ttn: thing 2: thing.title is required", nil},
		{"mis-cased member in second", strings.NewReader(good + `{"id":"b","Title":"B"}`), 1 << 20,
			`ttn: thing 2: unknown member "Title" (did you mean "title"?)`, nil},
		{"duplicate in third", strings.NewReader(good + good + `{"id":"c","id":"c","title":"C"}`), 1 << 20,
			"ttn: thing 3: invalid JSON at /id: duplicate object member name", nil},
		{"invalid UTF-8 in second", strings.NewReader(good + "{\"id\":\"\xff\",\"title\":\"B\"}"), 1 << 20,
			"ttn: thing 2: invalid JSON at /id: invalid UTF-8", nil},
		{"syntax error in third", strings.NewReader(good + good + `{"id":"c",}`), 1 << 20, "ttn: thing 3: invalid JSON at byte", nil},
		{"truncated second", strings.NewReader(good + `{"id":"b"`), 1 << 20, "ttn: thing 2: ", nil},
		{"array", strings.NewReader(`[` + good + `]`), 1 << 20, "ttn: thing 1: want a JSON object, got an array", nil},
		{"over maxBytes", strings.NewReader(good + good), int64(len(good)*2 - 1), "ttn: input too large: over 45 bytes", ErrTooLarge},
		{"zero maxBytes", strings.NewReader(good), 0, "ttn: byte limit 0 is not positive", nil},
		{"read error", io.MultiReader(strings.NewReader(good), errReader{}), 1 << 20, "ttn: read: disk on fire", errDisk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			things, err := ReadThings(tc.r, tc.maxBytes)
			if things != nil {
				t.Errorf("got %d things with the error, want none", len(things))
			}
			checkError(t, err, tc.want)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
		})
	}
}

var errDisk = errors.New("disk on fire")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errDisk }
