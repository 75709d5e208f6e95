// Package config loads YAML config files strictly: unknown keys, values of
// the wrong type and invalid values are errors that name the file, the line
// and the key, which is what an operator editing a config on a device needs.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a problem in a config file, with where it is.
type Error struct {
	File  string
	Line  int    // 0 when unknown
	Field string // key path such as "processes.2.binary"; "" when not one field's
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": %s", e.Field)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// FieldError is what a validate function returns for an invalid value: the
// key path (dot-separated, list indexes as numbers) and what is wrong.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Invalid returns a *FieldError for field.
func Invalid(field, format string, a ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, a...)}
}

// Load decodes the YAML file at path into v (keys absent from the file keep
// v's values), then calls validate, if not nil. Every error is an *Error.
func Load(path string, v any, validate func() error) error {
	root, err := decode(path, v, "")
	if err != nil {
		return err
	}
	if validate == nil {
		return nil
	}
	if err := validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return &Error{File: path, Line: Line(root, fe.Field), Field: fe.Field, Err: fe.Err}
		}
		return &Error{File: path, Err: err}
	}
	return nil
}

// decode reads the YAML file at path into v, strictly, and returns its
// document tree, from which the lines of the keys that later fail
// validation are found. An unknown key is reported as such, with the known
// key it is closest to and keysHint. Every error is an *Error.
func decode(path string, v any, keysHint string) (*yaml.Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		ce := yamlError(path, nil, err)
		if l := syntaxLine(data, ce.Err.Error()); l > 0 {
			ce.Line = l
		}
		return nil, ce
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		ce := yamlError(path, &root, err)
		if ce.Err.Error() == unknownKey {
			msg := unknownKey
			if s := nearest(ce.Field, knownKeys(reflect.TypeOf(v), parentPath(&root, ce.Line, ce.Field))); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			ce.Err = errors.New(msg + keysHint)
		}
		return nil, ce
	}
	return &root, nil
}

// unknownKey is the message of an unknown key's *Error, before decode adds
// a suggestion.
const unknownKey = "unknown key"

// yamlError turns the yaml package's "yaml: line N: ..." into an *Error.
// The yaml package names the key only of an unknown key ("field X not
// found in type T", which speaks of Go types an operator does not know);
// for other errors, a wrong type for instance, the key is the one on that
// line of root (nil when the file did not parse).
func yamlError(path string, root *yaml.Node, err error) *Error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		err = errors.New(te.Errors[0])
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	var field string
	if f, ok := unknownField(msg); ok {
		field, msg = f, unknownKey
	} else if line > 0 && root != nil && len(root.Content) > 0 {
		field = keyAt(root.Content[0], "", line)
	}
	return &Error{File: path, Line: line, Field: field, Err: errors.New(msg)}
}

// unknownField returns X of the yaml package's "field X not found in type T".
func unknownField(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "field ")
	if !ok {
		return "", false
	}
	name, _, ok := strings.Cut(rest, " not found in type ")
	return name, ok
}

// keyAt returns the path (as Line takes it) of the deepest key on line
// under n, or else of the key whose value starts on line (a list given
// where a single value belongs); "" when there is none.
func keyAt(n *yaml.Node, prefix string, line int) string {
	found := ""
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := join(prefix, k.Value)
			if deeper := keyAt(v, path, line); deeper != "" {
				return deeper
			}
			if k.Line == line || v.Line == line {
				found = path
			}
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			if deeper := keyAt(item, join(prefix, strconv.Itoa(i)), line); deeper != "" {
				return deeper
			}
		}
	}
	return found
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// Line finds the line of a key path ("processes.2.binary") in a document;
// for a path that does not exist it returns the line of its deepest
// existing ancestor, or 0.
func Line(root *yaml.Node, path string) int {
	if root == nil || len(root.Content) == 0 {
		return 0
	}
	n := root.Content[0]
	line := 0
	for _, part := range strings.Split(path, ".") {
		next := (*yaml.Node)(nil)
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part {
					line = n.Content[i].Line
					next = n.Content[i+1]
					break
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(part); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}
