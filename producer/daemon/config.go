package daemon

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ConfigError is a problem in a config file, with where it is.
type ConfigError struct {
	File  string
	Line  int    // 0 when unknown
	Field string // YAML key, "" when the problem is not one field's
	Err   error
}

func (e *ConfigError) Error() string {
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

func (e *ConfigError) Unwrap() error { return e.Err }

// LoadFile reads a YAML config file into o. Unknown keys, values of the
// wrong type and invalid values are errors (*ConfigError) naming the file,
// the line and the key. Keys absent from the file keep o's values.
func (o *Options) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return &ConfigError{File: path, Err: err}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return yamlError(path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(o); err != nil && !errors.Is(err, io.EOF) {
		return yamlError(path, err)
	}
	if field, err := o.validate(); err != nil {
		return &ConfigError{File: path, Line: keyLine(&root, field), Field: field, Err: err}
	}
	return nil
}

// yamlError turns the yaml package's "yaml: line N: ..." into a ConfigError.
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
	return &ConfigError{File: path, Line: line, Field: field, Err: errors.New(msg)}
}

// keyLine finds the line of a top-level key in a YAML document.
func keyLine(root *yaml.Node, key string) int {
	if root == nil || len(root.Content) == 0 {
		return 0
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i].Line
		}
	}
	return 0
}

// validate checks values a type cannot; it returns the offending key.
func (o *Options) validate() (string, error) {
	switch {
	case o.Socket == "":
		return "socket", errors.New("must not be empty")
	case o.SocketMode > 0o777:
		return "socket-mode", fmt.Errorf("%#o has bits other than permissions", o.SocketMode)
	case o.Width < 2 || o.Width%2 != 0:
		return "width", fmt.Errorf("%d must be an even number ≥ 2", o.Width)
	case o.Height < 2 || o.Height%2 != 0:
		return "height", fmt.Errorf("%d must be an even number ≥ 2", o.Height)
	case o.FPS < 0:
		return "fps", fmt.Errorf("%v must not be negative", o.FPS)
	case o.PoolMin < 0:
		return "pool-min", fmt.Errorf("%d must not be negative", o.PoolMin)
	case o.PoolMax < 1 || o.PoolMax < o.PoolMin:
		return "pool-max", fmt.Errorf("%d must be ≥ 1 and ≥ pool-min (%d)", o.PoolMax, o.PoolMin)
	case o.MaxConnections < 1:
		return "max-connections", fmt.Errorf("%d must be ≥ 1", o.MaxConnections)
	case o.MaxInFlight < 1:
		return "max-in-flight", fmt.Errorf("%d must be ≥ 1", o.MaxInFlight)
	case o.DefaultInFlight < 1 || o.DefaultInFlight > o.MaxInFlight:
		return "default-in-flight", fmt.Errorf("%d must be in 1..max-in-flight (%d)", o.DefaultInFlight, o.MaxInFlight)
	case o.DefaultMaxHold <= 0 || o.DefaultMaxHold > o.MaxHold:
		return "default-max-hold", fmt.Errorf("%v must be positive and ≤ max-hold (%v)", o.DefaultMaxHold, o.MaxHold)
	}
	return "", nil
}

// Load fills o from the command line: defaults, then the file named by
// -config (if any), then the flags given explicitly.
func (o *Options) Load(fs *flag.FlagSet, args []string) error {
	var config string
	fs.StringVar(&config, "config", "", "YAML config file; its keys are these flags' names, flags given on the command line win")
	o.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if config == "" {
		if field, err := o.validate(); err != nil {
			return fmt.Errorf("-%s: %w", field, err)
		}
		return nil
	}
	// The file overwrites the variables the flags set: remember what was
	// given on the command line and apply it again after the file.
	given := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "config" {
			given[f.Name] = f.Value.String()
		}
	})
	if err := o.LoadFile(config); err != nil {
		return err
	}
	for name, v := range given {
		f := fs.Lookup(name)
		if l, ok := f.Value.(*intList); ok {
			*l = nil // a list flag replaces the file's list instead of appending to it
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("-%s: %w", name, err)
		}
	}
	if field, err := o.validate(); err != nil {
		return fmt.Errorf("-%s: %w", field, err)
	}
	return nil
}
