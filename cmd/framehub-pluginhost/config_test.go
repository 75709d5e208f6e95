package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func loadArgs(t *testing.T, args ...string) (options, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return load(fs, args)
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plugins.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestLoadConfigFile(t *testing.T) {
	path := writeFile(t, `
socket: /run/x.sock
health-interval: 3s
restart-max: 1m
plugins:
  - name: motion
    path: bin/plugin-motion
    max-in-flight: 2
    max-hold: 1s
    policy: latest
    env: [A=1]
    params: {threshold: "8"}
`)
	o, err := loadArgs(t, "-config", path, "-plugin", "extra=/opt/p", "-health-interval", "5s", "-admin", "127.0.0.1:0")
	require.NoError(t, err)
	require.Equal(t, "/run/x.sock", o.host.Socket)
	require.Equal(t, 5*time.Second, o.host.HealthInterval, "the flag wins over the file")
	require.Equal(t, time.Minute, o.host.RestartMax)
	require.Equal(t, "127.0.0.1:0", o.adminAddr)
	old, err := loadArgs(t, "-plugin", "a=/opt/a", "-status-addr", "127.0.0.1:9420")
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9420", old.adminAddr, "-status-addr is the old name of -admin")
	require.Len(t, o.host.Plugins, 2)
	p := o.host.Plugins[0]
	require.Equal(t, filepath.Join(filepath.Dir(path), "bin/plugin-motion"), p.Path, "relative to the config file")
	require.Equal(t, 2, p.MaxInFlight)
	require.Equal(t, time.Second, p.MaxHold)
	require.Equal(t, "latest", p.Policy)
	require.Equal(t, []string{"A=1"}, p.Env)
	require.Equal(t, "8", p.Params["threshold"])
	require.Equal(t, "extra", o.host.Plugins[1].Name)
	require.Equal(t, "/opt/p", o.host.Plugins[1].Path)

	o, err = loadArgs(t, "-config", path, "-socket", "@abstract")
	require.NoError(t, err)
	require.Equal(t, "@abstract", o.host.Socket)
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"unknown key", "plugins:\n  - name: a\n    path: /x\n    treshold: 3\n", "plugins.yaml:4: treshold"},
		{"bad policy", "plugins:\n  - name: a\n    path: /x\n    policy: newest\n", `policy "newest"`},
		{"no name", "plugins:\n  - path: /x\n", "needs a name"},
		{"bad duration", "health-interval: soon\nplugins:\n  - name: a\n    path: /x\n", "plugins.yaml:1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadArgs(t, "-config", writeFile(t, tc.file))
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := loadArgs(t)
	require.ErrorContains(t, err, "no plugins")
	_, err = loadArgs(t, "-plugin", "nopath")
	require.ErrorContains(t, err, "NAME=PATH")
	_, err = loadArgs(t, "-plugin", "a=/x", "stray")
	require.ErrorContains(t, err, "unexpected arguments")
}
