package ttn

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/thingtracker/ttn/topics"
)

// A shape is one kind of TTN object: every spelling of a member it accepts,
// mapped to the field that spelling sets. Spellings of one field form a
// variant pair; an object may use only one of them.
type shape map[string]string

// newShape builds a shape from field names; "a|b" lists the spellings of
// field a.
func newShape(fields ...string) shape {
	s := make(shape)
	for _, f := range fields {
		spellings := strings.Split(f, "|")
		for _, sp := range spellings {
			s[sp] = spellings[0]
		}
	}
	return s
}

// suggest returns the field whose spelling name matches ignoring case, or "".
func (s shape) suggest(name string) string {
	best := ""
	for sp, field := range s {
		if strings.EqualFold(sp, name) && (best == "" || field < best) {
			best = field
		}
	}
	return best
}

// setter decodes the value v of the member at path at into the field named
// field.
type setter func(field, at string, v jsontext.Value) error

// members calls set for each member of the object v at path, in input order,
// with the field its spelling stands for. x*Metadata members go to *ext
// verbatim (under their field name, so a variant spelling is normalised);
// when ext is nil there are none. A null value counts as an absent member.
// An unknown member, or two spellings of one field, is an error.
func members(path string, v jsontext.Value, s shape, ext *topics.Extensions, set setter) error {
	if k := v.Kind(); k != jsontext.KindBeginObject {
		if path == "" {
			return fmt.Errorf("want a JSON object, got %s", kindName(k))
		}
		return errorf(path, "want an object, got %s", kindName(k))
	}
	d := jsontext.NewDecoder(bytes.NewReader(v))
	if _, err := d.ReadToken(); err != nil {
		return errorf(path, "%v", jsonError(err))
	}
	used := make(map[string]string) // field → spelling
	for d.PeekKind() != jsontext.KindEndObject {
		tok, err := d.ReadToken()
		if err != nil {
			return errorf(path, "%v", jsonError(err))
		}
		name := tok.String()
		val, err := d.ReadValue()
		if err != nil {
			return errorf(path, "%v", jsonError(err))
		}
		field, known := s[name]
		if !known && ext != nil && topics.IsExtensionName(name) {
			field, known = name, true
		}
		if !known {
			if hint := s.suggest(name); hint != "" {
				return errorf(path, "unknown member %q (did you mean %q?)", clip(name), hint)
			}
			return errorf(path, "unknown member %q", clip(name))
		}
		if prev, dup := used[field]; dup {
			return errorf(path, "both %q and %q are present; use one", prev, name)
		}
		used[field] = name
		if ext != nil && topics.IsExtensionName(field) {
			if *ext == nil {
				*ext = make(topics.Extensions)
			}
			(*ext)[field] = val.Clone()
			continue
		}
		if val.Kind() == jsontext.KindNull {
			continue
		}
		if err := set(field, join(path, name), val); err != nil {
			return err
		}
	}
	return nil
}

// each calls fn for every element of the array v at path at.
func each(at string, v jsontext.Value, fn func(at string, v jsontext.Value) error) error {
	if k := v.Kind(); k != jsontext.KindBeginArray {
		return errorf(at, "want an array, got %s", kindName(k))
	}
	d := jsontext.NewDecoder(bytes.NewReader(v))
	if _, err := d.ReadToken(); err != nil {
		return errorf(at, "%v", jsonError(err))
	}
	for i := 0; d.PeekKind() != jsontext.KindEndArray; i++ {
		e, err := d.ReadValue()
		if err != nil {
			return errorf(at, "%v", jsonError(err))
		}
		if err := fn(fmt.Sprintf("%s[%d]", at, i), e); err != nil {
			return err
		}
	}
	return nil
}

// list decodes the array v at path at into *dst, each element by conv.
func list[T any](at string, v jsontext.Value, dst *[]T, conv func(at string, v jsontext.Value, dst *T) error) error {
	return each(at, v, func(at string, v jsontext.Value) error {
		var x T
		if err := conv(at, v, &x); err != nil {
			return err
		}
		*dst = append(*dst, x)
		return nil
	})
}

// str decodes a JSON string.
func str(at string, v jsontext.Value, dst *string) error {
	if k := v.Kind(); k != jsontext.KindString {
		return errorf(at, "want a string, got %s", kindName(k))
	}
	b, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return errorf(at, "%v", jsonError(err))
	}
	*dst = string(b)
	return nil
}

// strs decodes an array of strings.
func strs(at string, v jsontext.Value, dst *[]string) error {
	return list(at, v, dst, str)
}

// text decodes a string, or a number as its literal text exactly as written.
func text(at string, v jsontext.Value, dst *string) error {
	if v.Kind() == jsontext.KindNumber {
		*dst = string(bytes.TrimSpace(v))
		return nil
	}
	if k := v.Kind(); k != jsontext.KindString {
		return errorf(at, "want a string or a number, got %s", kindName(k))
	}
	return str(at, v, dst)
}

// number decodes a JSON number into a float64.
func number(at string, v jsontext.Value, dst *float64) error {
	if k := v.Kind(); k != jsontext.KindNumber {
		return errorf(at, "want a number, got %s", kindName(k))
	}
	lit := string(bytes.TrimSpace(v))
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return errorf(at, "number %s is out of range", clip(lit))
	}
	*dst = f
	return nil
}

// integer decodes a JSON number that is a whole int64.
func integer(at string, v jsontext.Value, dst *int64) error {
	if k := v.Kind(); k != jsontext.KindNumber {
		return errorf(at, "want a number, got %s", kindName(k))
	}
	lit := string(bytes.TrimSpace(v))
	n, err := strconv.ParseInt(lit, 10, 64)
	if err != nil {
		return errorf(at, "want an integer, got %s", clip(lit))
	}
	*dst = n
	return nil
}

// kindName names a JSON kind as error messages do.
func kindName(k jsontext.Kind) string {
	switch k {
	case jsontext.KindNull:
		return "null"
	case jsontext.KindFalse, jsontext.KindTrue:
		return "a boolean"
	case jsontext.KindString:
		return "a string"
	case jsontext.KindNumber:
		return "a number"
	case jsontext.KindBeginObject:
		return "an object"
	case jsontext.KindBeginArray:
		return "an array"
	}
	return "nothing"
}

// join appends a member name to a path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// errorf formats an error about the value at path ("" is the top level).
func errorf(path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if path == "" {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", path, msg)
}

// prefixed puts path in front of err, keeping it in the chain; nil stays nil.
func prefixed(path string, err error) error {
	if path == "" || err == nil {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}

// clip shortens s for an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// jsonError turns a JSON library error into one short line.
func jsonError(err error) error {
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) && syn.Err != nil {
		return fmt.Errorf("invalid JSON at byte %d: %v", syn.ByteOffset, syn.Err)
	}
	return err
}
