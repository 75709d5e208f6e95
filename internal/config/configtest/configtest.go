// Package configtest helps test the options loaders of the framehub
// programs (a Load method, usually config.ParseFlags behind it): it runs
// one on a command line and, when given, a config file written for the test.
package configtest

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// Loader is a pointer to options with the Load method of the framehub
// programs' options.
type Loader[O any] interface {
	*O
	Load(fs *flag.FlagSet, args []string) error
}

// Load returns the options O that their Load method makes of args, preceded
// by -config and the path of file written as name in a temporary directory
// (unless file is ""). The flag set neither prints nor exits.
func Load[O any, P Loader[O]](t testing.TB, name, file string, args ...string) (O, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if file != "" {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatalf("config file: %v", err)
		}
		args = append([]string{"-config", path}, args...)
	}
	var o O
	err := P(&o).Load(fs, args)
	return o, err
}
