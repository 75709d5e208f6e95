package daemon

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/config"
	"github.com/framehub/framehub/internal/config/configtest"
)

func TestConfigFile(t *testing.T) {
	o, err := configtest.Load[Options](t, "snapshot.yaml", "# snapshot daemon\nquality: 90\nkeep-bytes: 2GiB\nframe-timeout: 3s\nadmin: unix:/run/fh/snap.sock\nencoder: go\n"+
		"stream: raw2\ndir: /tmp/s\ngst-launch: /opt/gst\nkeep-count: 5\nwrite-retries: 1\nmax-hold: 4s\nwebhook: http://h/x\nevent-socket: /run/e\nsocket: '@fh'\n")
	require.NoError(t, err)
	require.Equal(t, Options{
		Socket: "@fh", Stream: "raw2", Admin: "unix:/run/fh/snap.sock", Dir: "/tmp/s", Encoder: "go", GstLaunch: "/opt/gst",
		Quality: 90, Queue: 32, KeepCount: 5, KeepBytes: 2 << 30, WriteRetries: 1, FrameTimeout: 3 * time.Second,
		MaxHold: 4 * time.Second, Webhook: "http://h/x", EventSocket: "/run/e",
	}, o, "every flag is a key; keys absent from the file keep the flag defaults")
}

func TestFlagsWinOverFile(t *testing.T) {
	o, err := configtest.Load[Options](t, "snapshot.yaml", "quality: 90\nqueue: 8\n", "-quality", "70")
	require.NoError(t, err)
	require.Equal(t, 70, o.Quality)
	require.Equal(t, 8, o.Queue)
	// A flag given on the command line wins even when the file's value is invalid.
	o, err = configtest.Load[Options](t, "snapshot.yaml", "quality: 900\n", "-quality", "70")
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
		{"wrong type", "queue: 4\nkeep-count: lots\n", 2, "keep-count", "`lots`"},
		{"invalid value", "dir: /tmp/x\nquality: 150\n", 2, "quality", "150 is not in 1..100"},
		{"bad size", "keep-bytes: lots\n", 1, "keep-bytes", `keep-bytes: invalid value "lots"`},
		{"bad duration", "\n\nframe-timeout: soon\n", 3, "frame-timeout", "`soon`"},
		{"negative duration", "max-hold: -1s\n", 1, "max-hold", "must be positive"},
		{"encoder", "encoder: nvjpeg\n", 1, "encoder", "not go or gst"},
		{"webhook", "webhook: ftp://x\n", 1, "webhook", "not an http"},
		{"queue", "dir: /tmp\nqueue: 0\n", 2, "queue", "queue: 0 must be ≥ 1"},
		{"twice", "queue: 4\nqueue: 5\n", 2, "queue", "already defined at line 1"},
		{"list", "dir:\n  - a\n  - b\n", 2, "dir", "!!seq"},
		{"config key", "config: other.yaml\n", 1, "config", "unknown key"},
		{"syntax", "quality: 90\n  queue: [\n", 2, "", ""},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			_, err := configtest.Load[Options](t, "snapshot.yaml", ca.file)
			var ce *config.Error
			require.True(t, errors.As(err, &ce), "err = %v", err)
			require.Equal(t, ca.line, ce.Line, "err = %v", err)
			require.Equal(t, ca.key, ce.Field, "err = %v", err)
			require.Contains(t, err.Error(), "snapshot.yaml:")
			require.Contains(t, err.Error(), ca.msg)
		})
	}
	_, err := configtest.Load[Options](t, "snapshot.yaml", "", "-quality", "0")
	require.ErrorContains(t, err, "-quality: 0 is not in 1..100")
	_, err = configtest.Load[Options](t, "snapshot.yaml", "", "stray")
	require.ErrorContains(t, err, `unexpected argument "stray"`)
	_, err = configtest.Load[Options](t, "snapshot.yaml", "", "-config", "/nonexistent.yaml")
	require.ErrorContains(t, err, "/nonexistent.yaml")
}

func TestConfigMapsRetries(t *testing.T) {
	o, err := configtest.Load[Options](t, "snapshot.yaml", "write-retries: 0\n")
	require.NoError(t, err)
	require.Equal(t, -1, o.Config().WriteRetries, "0 retries in the file means none, not the default")
}
