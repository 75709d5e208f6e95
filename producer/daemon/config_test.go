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
		path := filepath.Join(t.TempDir(), "producer.yaml")
		require.NoError(t, os.WriteFile(path, []byte(file), 0o600))
		args = append([]string{"-config", path}, args...)
	}
	err := o.Load(fs, args)
	return o, err
}

func TestConfigFile(t *testing.T) {
	o, err := load(t, "width: 1280\nheight: 720\ndefault-max-hold: 3s\nallow-uid: [1000, 1001]\n")
	require.NoError(t, err)
	require.Equal(t, 1280, o.Width)
	require.Equal(t, 720, o.Height)
	require.Equal(t, 3*time.Second, o.DefaultMaxHold)
	require.Equal(t, intList{1000, 1001}, o.AllowUIDs)
	require.Equal(t, 30.0, o.FPS, "keys absent from the file keep the flag defaults")
}

func TestFlagsWinOverFile(t *testing.T) {
	o, err := load(t, "width: 1280\nallow-uid: [1000]\n", "-width", "640", "-allow-uid", "7")
	require.NoError(t, err)
	require.Equal(t, 640, o.Width)
	require.Equal(t, intList{7}, o.AllowUIDs)
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, file string
		line       int
		field      string
	}{
		{"unknown key", "width: 1280\nwidht: 720\n", 2, "widht"},
		{"wrong type", "width: 1280\nheight: tall\n", 2, ""},
		{"invalid value", "fps: 30\nwidth: 1281\n", 2, "width"},
		{"pool", "pool-min: 8\npool-max: 4\n", 2, "pool-max"},
		{"hold", "max-hold: 1s\ndefault-max-hold: 5s\n", 2, "default-max-hold"},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			_, err := load(t, ca.file)
			var ce *config.Error
			require.True(t, errors.As(err, &ce), "err = %v", err)
			require.Equal(t, ca.line, ce.Line, "err = %v", err)
			if ca.field != "" {
				require.Equal(t, ca.field, ce.Field, "err = %v", err)
			}
			require.Contains(t, err.Error(), "producer.yaml:")
		})
	}
	_, err := load(t, "", "-width", "5")
	require.ErrorContains(t, err, "-width")
}
