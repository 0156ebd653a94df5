package ttn

import (
	"bytes"
	"errors"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/thingtracker/ttn/topics"
)

// DefaultVersion is the version given to a Thing that has none.
const DefaultVersion = "1"

// Document is a TTN tracker document read tolerantly.
type Document struct {
	Info   topics.TrackerInfo // Name = the document's "id"
	Things []topics.Thing
}

// ParseDocument reads a TTN tracker document: strict JSON, every variant
// spelling of the specification, every x*Metadata member kept (see the
// package comment). The derived counts (thingsCount, trackersCount) are
// ignored. Things may be absent or empty; the document's "id" is required.
// Every Thing and the TrackerInfo pass their Check methods. An error names
// the first problem and where it is, as in
// `ttn: things[0]: thing.title is required`. The result shares no memory
// with b.
func ParseDocument(b []byte) (*Document, error) {
	if err := topics.CheckStrictJSON(b); err != nil {
		return nil, fail("ttn: ", err)
	}
	doc := new(Document)
	err := trackerInfo(b, &doc.Info, func(at string, v jsontext.Value) error {
		var t topics.Thing
		if err := thing(at, v, &t); err != nil {
			return err
		}
		doc.Things = append(doc.Things, t)
		return nil
	})
	if err != nil {
		return nil, fail("ttn: ", err)
	}
	if doc.Info.Name == "" {
		return nil, errors.New(`ttn: document "id" is required`)
	}
	if err := doc.Info.Check(); err != nil {
		return nil, fail("ttn: ", err)
	}
	return doc, nil
}

// ParseThing reads one TTN Thing object tolerantly, by the same rules as the
// things inside a document, and checks the result.
func ParseThing(b []byte) (*topics.Thing, error) {
	t, err := parseThing(b)
	if err != nil {
		return nil, fail("ttn: ", err)
	}
	return t, nil
}

// parseThing is ParseThing without the package prefix on errors.
func parseThing(b []byte) (*topics.Thing, error) {
	if err := topics.CheckStrictJSON(b); err != nil {
		return nil, err
	}
	if err := stringVersion(b); err != nil {
		return nil, err
	}
	t := new(topics.Thing)
	if err := thing("", b, t); err != nil {
		return nil, err
	}
	return t, nil
}

// importError is an error of this package: prefixed, and printed on one line
// whatever line breaks the input's names carry into the message.
type importError struct {
	prefix string
	err    error
}

// fail returns err behind prefix, on one line.
func fail(prefix string, err error) error { return &importError{prefix, err} }

var lineBreaks = strings.NewReplacer("\n", `\n`, "\r", `\r`)

func (e *importError) Error() string { return e.prefix + lineBreaks.Replace(e.err.Error()) }

func (e *importError) Unwrap() error { return e.err }

// stringVersion refuses a Thing, published on its own, whose version is a
// JSON number: read as its digits it would silently become a string (1.10
// and 1.1 are one number and two versions). The specification's documents
// write numbers there, and ParseDocument takes them; a publish is ours.
func stringVersion(b []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil // thing() says what is wrong
	}
	for dec.PeekKind() == '"' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil
		}
		name := tok.String() // before the next read voids tok
		v, err := dec.ReadValue()
		if err != nil {
			return nil
		}
		if name == "version" && v.Kind() == '0' {
			return errorf("version", "want a string, as in \"version\": \"%s\", not a number", clip(string(v)))
		}
	}
	return nil
}
