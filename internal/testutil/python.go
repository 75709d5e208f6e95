package testutil

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// PythonWithMsgpack returns a python3 that can import msgpack, for the
// Python consumer of examples/consumer-python, or skips the test saying
// precisely what is missing. The python3 first on PATH may be another
// installation (pyenv, a venv) than Debian's, which is the one
// python3-msgpack installs into: both are tried.
func PythonWithMsgpack(t testing.TB) string {
	t.Helper()
	var found []string
	for _, name := range []string{"python3", "/usr/bin/python3"} {
		py, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		found = append(found, py)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = exec.CommandContext(ctx, py, "-c", "import msgpack").Run()
		cancel()
		if err == nil {
			return py
		}
	}
	if len(found) == 0 {
		t.Skip("python3 not installed (make deps installs it)")
	}
	t.Skipf("python3-msgpack not installed (make deps installs it); tried %s", strings.Join(found, ", "))
	return ""
}
