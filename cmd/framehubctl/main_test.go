package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/testutil"
)

func TestDispatch(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		args       []string
		code       int
		out, inErr string
	}{
		{nil, 2, "", "Usage: framehubctl <command>"},
		{[]string{"help"}, 0, "snapshot", ""},
		{[]string{"--help"}, 0, "Commands:", ""},
		{[]string{"snap"}, 2, "", `unknown command "snap"`},
		{[]string{"snapshot", "-h"}, 0, "", "-quality"},
		{[]string{"snapshot", "-bogus"}, 2, "", "flag provided but not defined: -bogus"},
		{[]string{"snapshot", "extra"}, 2, "", `unexpected argument "extra"`},
		{[]string{"snapshot", "-scale", "640", "-width", "640", "-height", "360"}, 2, "", "not both"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(ctx, c.args, &stdout, &stderr)
		require.Equal(t, c.code, code, "%q: stderr %s", c.args, stderr.String())
		require.Contains(t, stdout.String(), c.out, "%q", c.args)
		require.Contains(t, stderr.String(), c.inErr, "%q", c.args)
	}
}

func TestSnapshotUnreachable(t *testing.T) {
	addr := testutil.RefusingAddr(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"snapshot", "-addr", addr}, &stdout, &stderr)
	require.Equal(t, 1, code)
	require.Equal(t, "framehubctl snapshot: cannot reach framehub-snapshot at "+addr+": connection refused", strings.TrimSpace(stderr.String()))
}

// TestToken: framehubctl sends the admin token of -token-file, and says
// why it had none when a daemon asks for it.
func TestToken(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g, err := admin.NewGuard(ln.Addr().String(), admin.Access{TokenFile: tokenFile})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /consumers", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, `[{"Name": "rec", "PID": 7}]`) })
	srv := &http.Server{Handler: g.Wrap(mux), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"consumers", "-producer", ln.Addr().String(), "-token-file", tokenFile}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Contains(t, stdout.String(), "rec")

	stdout.Reset()
	stderr.Reset()
	missing := filepath.Join(dir, "missing.token")
	code = run(context.Background(), []string{"consumers", "-producer", ln.Addr().String(), "-token-file", missing}, &stdout, &stderr)
	require.Equal(t, 1, code)
	require.Contains(t, stderr.String(), "401 Unauthorized")
	require.Contains(t, stderr.String(), "framehubctl sent no token: admin token: open "+missing+": no such file or directory")
}
