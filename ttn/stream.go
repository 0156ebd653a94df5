package ttn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/thingtracker/ttn/topics"
)

// Errors of ReadThings.
var (
	ErrNoThings = errors.New("ttn: no things")
	ErrTooLarge = errors.New("ttn: input too large")
)

// ReadThings reads a sequence of Thing objects from r (one object, or
// NDJSON), at most maxBytes in total, and returns them all, or the first
// error naming the object's position (1-based "thing 3: ...").
//
// The objects may be separated by any JSON whitespace, so one
// pretty-printed object and NDJSON are both accepted; each is read as
// ParseThing reads one. ReadThings reads r to its end (or past maxBytes)
// before it converts anything and returns no Things with an error: input
// over maxBytes is ErrTooLarge, input without an object ErrNoThings, and a
// non-positive maxBytes is an error. It blocks only on r.
func ReadThings(r io.Reader, maxBytes int64) ([]topics.Thing, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("ttn: byte limit %d is not positive", maxBytes)
	}
	limit := maxBytes
	if limit < math.MaxInt64 {
		limit++ // one byte more tells a full read from a cut one
	}
	b, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil {
		return nil, fail("ttn: read: ", err)
	}
	if int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, maxBytes)
	}
	// Duplicate names and invalid UTF-8 pass the splitter so that
	// CheckStrictJSON reports them, as it does for ParseThing.
	d := jsontext.NewDecoder(bytes.NewReader(b),
		jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	var things []topics.Thing
	for n := 1; ; n++ {
		v, err := d.ReadValue()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fail(fmt.Sprintf("ttn: thing %d: ", n), jsonError(err))
		}
		t, err := parseThing(v)
		if err != nil {
			return nil, fail(fmt.Sprintf("ttn: thing %d: ", n), err)
		}
		things = append(things, *t)
	}
	if len(things) == 0 {
		return nil, ErrNoThings
	}
	return things, nil
}
