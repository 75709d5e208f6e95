package config

import (
	"errors"
	"flag"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// ListValue is a flag.Value that collects a flag given several times into a
// list. ParseFlags calls Reset before it sets such a flag again after the
// config file, so that the command line's list replaces the file's instead
// of adding to it.
type ListValue interface {
	flag.Value
	Reset()
}

// ParseFlags fills the settings v of a framehub program from its command
// line: the defaults of the flags already defined on fs, then the YAML file
// named by -config (which ParseFlags defines), whose keys are the flag names
// (v's yaml tags), then the flags given in args, which win over the file.
//
// checkArgs, if not nil, checks the arguments left after the flags, before
// the file is read. validate, if not nil, then checks the result. A
// *FieldError from it becomes an *Error naming the file, the line and the
// key when the key's value came from the file, and "-key: problem" when it
// came from the command line; so a flag corrects an invalid value of the
// file. Errors of the file itself are *Error.
func ParseFlags(fs *flag.FlagSet, args []string, v any, checkArgs func(args []string) error, validate func() error) error {
	var path string
	fs.StringVar(&path, "config", "", "YAML config file; its keys are these flags' names, flags given on the command line win")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if checkArgs != nil {
		if err := checkArgs(fs.Args()); err != nil {
			return err
		}
	}
	// Decoding the file overwrites the variables the flags set: remember
	// what was given on the command line and set it again after the file.
	given := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "config" {
			given[f.Name] = f.Value.String()
		}
	})
	var root *yaml.Node
	if path != "" {
		var err error
		if root, err = decode(path, v, " (the keys are the flag names; see --help)"); err != nil {
			return err
		}
		for name, value := range given {
			if l, ok := fs.Lookup(name).Value.(ListValue); ok {
				l.Reset()
			}
			if err := fs.Set(name, value); err != nil {
				return fmt.Errorf("-%s: %w", name, err)
			}
		}
	}
	if validate == nil {
		return nil
	}
	err := validate()
	var fe *FieldError
	if !errors.As(err, &fe) {
		return err
	}
	if _, flagged := given[fe.Field]; path != "" && !flagged {
		return &Error{File: path, Line: Line(root, fe.Field), Field: fe.Field, Err: fe.Err}
	}
	return fmt.Errorf("-%s: %w", fe.Field, fe.Err)
}

// NoArgs is a checkArgs for ParseFlags that refuses any argument after the
// flags, for programs whose settings are all flags.
func NoArgs(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q (all settings are flags)", args[0])
	}
	return nil
}
