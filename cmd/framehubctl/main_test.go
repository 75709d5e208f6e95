package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

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
