package daemon

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func load(t *testing.T, file string, args ...string) (Options, error) {
	t.Helper()
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if file != "" {
		path := filepath.Join(t.TempDir(), "snapshot.yaml")
		require.NoError(t, os.WriteFile(path, []byte(file), 0o600))
		args = append([]string{"-config", path}, args...)
	}
	err := o.Load(fs, args)
	return o, err
}

func TestConfigFile(t *testing.T) {
	o, err := load(t, "# snapshot daemon\nquality: 90\nkeep-bytes: 2GiB\nframe-timeout: 3s\nadmin: unix:/run/fh/snap.sock\nencoder: go\n")
	require.NoError(t, err)
	require.Equal(t, 90, o.Quality)
	require.Equal(t, ByteSize(2<<30), o.KeepBytes)
	require.Equal(t, 3*time.Second, o.FrameTimeout)
	require.Equal(t, "unix:/run/fh/snap.sock", o.Admin)
	require.Equal(t, 32, o.Queue, "keys absent from the file keep the flag defaults")
	require.Equal(t, 1000, o.KeepCount)
}

func TestFlagsWinOverFile(t *testing.T) {
	o, err := load(t, "quality: 90\nqueue: 8\n", "-quality", "70")
	require.NoError(t, err)
	require.Equal(t, 70, o.Quality)
	require.Equal(t, 8, o.Queue)
	// A flag given on the command line wins even when the file's value is invalid.
	o, err = load(t, "quality: 900\n", "-quality", "70")
	require.NoError(t, err)
	require.Equal(t, 70, o.Quality)
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, file string
		line       int
		key        string
		msg        string
	}{
		{"unknown key", "quality: 90\nqualty: 80\n", 2, "qualty", "unknown key"},
		{"wrong type", "queue: 4\nkeep-count: lots\n", 2, "keep-count", `invalid value "lots"`},
		{"invalid value", "dir: /tmp/x\nquality: 150\n", 2, "quality", "150 is not in 1..100"},
		{"bad size", "keep-bytes: 2 parsecs\n", 1, "keep-bytes", "not a size"},
		{"bad duration", "\n\nframe-timeout: soon\n", 3, "frame-timeout", `invalid value "soon"`},
		{"negative duration", "max-hold: -1s\n", 1, "max-hold", "must be positive"},
		{"encoder", "encoder: nvjpeg\n", 1, "encoder", "not go or gst"},
		{"webhook", "webhook: ftp://x\n", 1, "webhook", "not an http"},
		{"twice", "queue: 4\nqueue: 5\n", 2, "queue", "given twice (first at line 1)"},
		{"list", "dir:\n  - a\n  - b\n", 2, "dir", "single value"},
		{"config key", "config: other.yaml\n", 1, "config", "unknown key"},
		{"syntax", "quality: 90\n  queue: [\n", 2, "", ""},
		{"not a mapping", "- quality\n", 1, "", "mapping"},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			_, err := load(t, ca.file)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "err = %v", err)
			require.Equal(t, ca.line, ce.Line, "err = %v", err)
			require.Equal(t, ca.key, ce.Key, "err = %v", err)
			require.Contains(t, err.Error(), "snapshot.yaml:")
			require.Contains(t, err.Error(), ca.msg)
		})
	}
	_, err := load(t, "", "-quality", "0")
	require.ErrorContains(t, err, "-quality: 0 is not in 1..100")
	_, err = load(t, "", "stray")
	require.ErrorContains(t, err, `unexpected argument "stray"`)
	_, err = load(t, "", "-config", "/nonexistent.yaml")
	require.ErrorContains(t, err, "/nonexistent.yaml")
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1500": 1500, "2K": 2000, "3MiB": 3 << 20, "1 GiB": 1 << 30, "5G": 5e9, "7B": 7} {
		var b ByteSize
		require.NoError(t, b.Set(in), in)
		require.Equal(t, want, int64(b), in)
	}
	for _, in := range []string{"", "-1", "1.5G", "G", "1TB"} {
		var b ByteSize
		require.Error(t, b.Set(in), in)
	}
}

func TestConfigMapsRetries(t *testing.T) {
	o, err := load(t, "write-retries: 0\n")
	require.NoError(t, err)
	require.Equal(t, -1, o.Config().WriteRetries, "0 retries in the file means none, not the default")
}
