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
	data, err := os.ReadFile(path)
	if err != nil {
		return &Error{File: path, Err: err}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return yamlError(path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return yamlError(path, err)
	}
	if validate == nil {
		return nil
	}
	if err := validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return &Error{File: path, Line: Line(&root, fe.Field), Field: fe.Field, Err: fe.Err}
		}
		return &Error{File: path, Err: err}
	}
	return nil
}

// yamlError turns the yaml package's "yaml: line N: ..." into an *Error.
func yamlError(path string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		err = errors.New(te.Errors[0])
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	field := ""
	if i := strings.Index(msg, "field "); i >= 0 {
		if f := strings.Fields(msg[i+len("field "):]); len(f) > 0 {
			field = f[0]
		}
	}
	return &Error{File: path, Line: line, Field: field, Err: errors.New(msg)}
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
