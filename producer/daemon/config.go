package daemon

import (
	"errors"
	"flag"
	"fmt"

	"github.com/framehub/framehub/internal/config"
)

// LoadFile reads a YAML config file into o. Unknown keys, values of the
// wrong type and invalid values are errors (*config.Error) naming the file,
// the line and the key. Keys absent from the file keep o's values.
func (o *Options) LoadFile(path string) error {
	return config.Load(path, o, func() error {
		if field, err := o.validate(); err != nil {
			return &config.FieldError{Field: field, Err: err}
		}
		return nil
	})
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
