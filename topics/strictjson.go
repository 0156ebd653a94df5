package topics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxJSONDepth bounds the nesting of payload JSON.
const MaxJSONDepth = 32

// CheckStrictJSON enforces the rules every implementation must apply to
// signed JSON so that all of them read the same bytes the same way: exactly
// one JSON value, valid UTF-8, no duplicate object names and no names that
// differ only in case, nesting at most MaxJSONDepth.
func CheckStrictJSON(b []byte) error {
	d := jsontext.NewDecoder(bytes.NewReader(b))
	// names holds, for every open container, the names seen so far (nil
	// for arrays); lowered is used once an object grows large.
	type level struct {
		names   []string
		lowered map[string]struct{}
	}
	var stack []level
	for {
		tok, err := d.ReadToken()
		if err == io.EOF {
			if len(stack) != 0 || d.InputOffset() == 0 {
				return errors.New("truncated JSON")
			}
			return nil
		}
		if err != nil {
			return jsonError(err)
		}
		switch tok.Kind() {
		case '{', '[':
			if len(stack) == MaxJSONDepth {
				return fmt.Errorf("nested deeper than %d levels", MaxJSONDepth)
			}
			stack = append(stack, level{})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case '"':
			depth := d.StackDepth()
			kind, n := d.StackIndex(depth)
			if kind != '{' || n%2 == 0 {
				break // a value, not a name
			}
			top := &stack[len(stack)-1]
			name := tok.String()
			if top.lowered == nil && len(top.names) < 16 {
				for _, seen := range top.names {
					if strings.EqualFold(seen, name) {
						return fmt.Errorf("object names %q and %q differ only in case", seen, name)
					}
				}
				top.names = append(top.names, name)
				break
			}
			if top.lowered == nil {
				top.lowered = make(map[string]struct{}, 2*len(top.names))
				for _, seen := range top.names {
					top.lowered[strings.ToLower(seen)] = struct{}{}
				}
			}
			low := strings.ToLower(name)
			if _, dup := top.lowered[low]; dup {
				return fmt.Errorf("object name %q repeats another name ignoring case", name)
			}
			top.lowered[low] = struct{}{}
		}
		if len(stack) == 0 {
			// One complete top-level value: nothing may follow.
			if _, err := d.ReadToken(); err != io.EOF {
				return errors.New("data after the JSON value")
			}
			return nil
		}
	}
}

// strictUnmarshal decodes one JSON value into v, refusing unknown members
// (structs that accept extensions capture them in an embedded fallback map).
func strictUnmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v, json.RejectUnknownMembers(true)); err != nil {
		return jsonError(err)
	}
	return nil
}

// jsonError turns a JSON library error into one short line.
func jsonError(err error) error {
	var se *json.SemanticError
	if errors.As(err, &se) {
		where := string(se.JSONPointer)
		switch {
		case se.Err != nil && where != "":
			return fmt.Errorf("at %s: %v", where, se.Err)
		case se.Err != nil:
			return se.Err
		case where != "" && se.JSONKind != 0:
			return fmt.Errorf("at %s: unexpected JSON %s", where, se.JSONKind)
		}
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		where := string(syn.JSONPointer)
		if where == "" {
			return fmt.Errorf("invalid JSON at byte %d: %v", syn.ByteOffset, syn.Err)
		}
		return fmt.Errorf("invalid JSON at %s: %v", where, syn.Err)
	}
	return err
}
