package daemon

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ConfigError is a problem in a config file, with where it is.
type ConfigError struct {
	File string
	Line int    // 0 when unknown
	Key  string // "" when the problem is not one key's
	Err  error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

// Load fills o from the command line: the flag defaults, then the YAML file
// named by -config (if any), then the flags given explicitly. The file is a
// mapping whose keys are the flag names and whose values are what the flag
// would take ("quality: 90", "keep-bytes: 2GiB", "frame-timeout: 3s").
// Unknown keys, keys given twice and invalid values are *ConfigError naming
// the file, the line and the key.
func (o *Options) Load(fs *flag.FlagSet, args []string) error {
	var config string
	fs.StringVar(&config, "config", "", "YAML config file; its keys are these flags' names, flags given on the command line win")
	o.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (all settings are flags)", fs.Arg(0))
	}
	var lines map[string]int
	if config != "" {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		var err error
		if lines, err = applyFile(fs, config, given); err != nil {
			return err
		}
	}
	if key, err := o.validate(); err != nil {
		if line, ok := lines[key]; ok {
			return &ConfigError{File: config, Line: line, Key: key, Err: err}
		}
		return fmt.Errorf("-%s: %w", key, err)
	}
	return nil
}

// applyFile sets the flags named by the keys of the YAML file at path,
// except those in skip (given on the command line). It returns the line of
// each key.
func applyFile(fs *flag.FlagSet, path string, skip map[string]bool) (map[string]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{File: path, Err: err}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(path, err)
	}
	lines := map[string]int{}
	if len(root.Content) == 0 {
		return lines, nil // empty file
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, &ConfigError{File: path, Line: m.Line, Err: errors.New("the file must be a mapping of flag names to values")}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := k.Value
		if key == "config" || fs.Lookup(key) == nil {
			return nil, &ConfigError{File: path, Line: k.Line, Key: key, Err: errors.New("unknown key (the keys are the flag names; see --help)")}
		}
		if first, dup := lines[key]; dup {
			return nil, &ConfigError{File: path, Line: k.Line, Key: key, Err: fmt.Errorf("given twice (first at line %d)", first)}
		}
		lines[key] = k.Line
		if v.Kind != yaml.ScalarNode {
			return nil, &ConfigError{File: path, Line: v.Line, Key: key, Err: errors.New("must be a single value, not a list or mapping")}
		}
		if skip[key] {
			continue
		}
		if err := fs.Set(key, v.Value); err != nil {
			return nil, &ConfigError{File: path, Line: v.Line, Key: key, Err: fmt.Errorf("invalid value %q: %w", v.Value, err)}
		}
	}
	return lines, nil
}

// syntaxError turns the yaml package's "yaml: line N: ..." into a ConfigError.
func syntaxError(path string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	return &ConfigError{File: path, Line: line, Err: errors.New(msg)}
}
