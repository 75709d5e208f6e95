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

	"github.com/framehub/framehub/internal/config"
)

func load(t *testing.T, file string, args ...string) (Options, error) {
	t.Helper()
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if file != "" {
		path := filepath.Join(t.TempDir(), "recorder.yaml")
		require.NoError(t, os.WriteFile(path, []byte(file), 0o600))
		args = append([]string{"-config", path}, args...)
	}
	err := o.Load(fs, args)
	return o, err
}

func TestOptions(t *testing.T) {
	o, err := load(t, "")
	require.NoError(t, err)
	cfg := o.Config()
	require.Equal(t, "h264", cfg.Stream)
	require.Equal(t, "recordings", cfg.Dir)
	require.Equal(t, time.Minute, cfg.Segment)
	require.Equal(t, time.Second, cfg.Fragment)
	require.Equal(t, 5*time.Second, cfg.Pre)
	require.Equal(t, 10*time.Second, cfg.Post)
	require.Equal(t, int64(32<<20), cfg.QueueBytes)
	require.Equal(t, "127.0.0.1:7702", o.Admin)

	o, err = load(t, "mode: event\nsegment: 5m\nkeep-bytes: 20GiB\nkeep-age: 720h\nqueue-bytes: 64M\n", "-segment", "30s")
	require.NoError(t, err)
	require.Equal(t, "event", o.Mode)
	require.Equal(t, 30*time.Second, o.Segment, "the command line wins")
	require.Equal(t, ByteSize(20<<30), o.KeepBytes)
	require.Equal(t, ByteSize(64e6), o.QueueBytes)
	require.Equal(t, 720*time.Hour, o.KeepAge)
}

func TestOptionErrors(t *testing.T) {
	for _, ca := range []struct {
		name, file string
		line       int
		field      string
	}{
		{"unknown key", "segment: 5m\nsegmnt: 1m\n", 2, "segmnt"},
		{"wrong type", "dir: x\nsegment: long\n", 2, ""},
		{"bad size", "keep-bytes: lots\n", 1, ""},
		{"invalid value", "fragment: 2s\nsegment: 1s\n", 2, "segment"},
		{"mode", "mode: sometimes\n", 1, "mode"},
	} {
		t.Run(ca.name, func(t *testing.T) {
			_, err := load(t, ca.file)
			var ce *config.Error
			require.True(t, errors.As(err, &ce), "err = %v", err)
			require.Equal(t, ca.line, ce.Line, "err = %v", err)
			if ca.field != "" {
				require.Equal(t, ca.field, ce.Field, "err = %v", err)
			}
			require.Contains(t, err.Error(), "recorder.yaml:")
		})
	}
	_, err := load(t, "", "-fragment", "1ms")
	require.ErrorContains(t, err, "-fragment")
}
