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
	o, err := configtest.Load[Options](t, "producer.yaml", "width: 1280\nheight: 720\ndefault-max-hold: 3s\nallow-uid: [1000, 1001]\nsocket-mode: 0o600\n")
	require.NoError(t, err)
	require.Equal(t, 1280, o.Width)
	require.Equal(t, 720, o.Height)
	require.Equal(t, 3*time.Second, o.DefaultMaxHold)
	require.Equal(t, intList{1000, 1001}, o.AllowUIDs)
	require.Equal(t, uint(0o600), o.SocketMode)
	require.Equal(t, 30.0, o.FPS, "keys absent from the file keep the flag defaults")
}

func TestFlagsWinOverFile(t *testing.T) {
	o, err := configtest.Load[Options](t, "producer.yaml", "width: 1280\nheight: 720\nallow-uid: [1000]\n", "-width", "640", "-allow-uid", "7", "-allow-uid", "8,9")
	require.NoError(t, err)
	require.Equal(t, 640, o.Width)
	require.Equal(t, intList{7, 8, 9}, o.AllowUIDs, "the command line's list replaces the file's")
	_, err = configtest.Load[Options](t, "producer.yaml", "", "stray")
	require.NoError(t, err, "the producer ignores arguments after the flags")
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, file string
		line       int
		field      string
	}{
		{"unknown key", "width: 1280\nwidht: 720\n", 2, "widht"},
		{"wrong type", "width: 1280\nheight: tall\n", 2, "height"},
		{"invalid value", "fps: 30\nwidth: 1281\n", 2, "width"},
		{"socket mode", "socket-mode: 0o7777\n", 1, "socket-mode"},
		{"pool", "pool-min: 8\npool-max: 4\n", 2, "pool-max"},
		{"in flight", "max-in-flight: 4\ndefault-in-flight: 5\n", 2, "default-in-flight"},
		{"hold", "max-hold: 1s\ndefault-max-hold: 5s\n", 2, "default-max-hold"},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			_, err := configtest.Load[Options](t, "producer.yaml", ca.file)
			var ce *config.Error
			require.True(t, errors.As(err, &ce), "err = %v", err)
			require.Equal(t, ca.line, ce.Line, "err = %v", err)
			require.Equal(t, ca.field, ce.Field, "err = %v", err)
			require.Contains(t, err.Error(), "producer.yaml:")
		})
	}
	_, err := configtest.Load[Options](t, "producer.yaml", "", "-width", "5")
	require.EqualError(t, err, "-width: 5 must be an even number ≥ 2 (or 0: the source's own)")
}

func TestConfigSecurityKeys(t *testing.T) {
	o, err := configtest.Load[Options](t, "producer.yaml",
		"admin-token: /etc/framehub/token\nadmin-public: true\nsocket-group: video\nallow-writable-surfaces: true\n")
	require.NoError(t, err)
	require.Equal(t, "/etc/framehub/token", o.TokenFile)
	require.True(t, o.Public)
	require.Equal(t, "video", o.SocketGroup)
	require.True(t, o.AllowWritableSurfaces)
	o, err = configtest.Load[Options](t, "producer.yaml", "admin-public: true\n", "-admin-public=false", "-admin-token", "/t")
	require.NoError(t, err)
	require.False(t, o.Public, "the flag wins over the file")
	require.Equal(t, "/t", o.TokenFile)
}
