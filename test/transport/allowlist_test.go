package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/sdk"
)

// The uid/gid allow-list (README's -allow-uid/-allow-gid, PROTOCOL.md's
// rejections): a peer whose SO_PEERCRED uid and gid are both outside the
// lists gets Reject code 3 "denied" with the documented reason before any
// Hello, and the connection ends; a peer matching either list is admitted.
// A consumer that sent its Hello at once still reads the Reject: the
// producer closes with the Hello unread, and the kernel reports a reset
// before the Reject (PROTOCOL.md §5), which the SDK and the Python
// consumer read past.
func TestAllowList(t *testing.T) {
	uid, gid := os.Getuid(), os.Getgid()
	t.Run("own uid and gid not listed", func(t *testing.T) {
		p := startProducer(t, producerOpts{Config: producer.Config{AllowUIDs: []int{uid + 1}, AllowGIDs: []int{gid + 1}}})
		r := dialRogue(t, p.Addr) // sends nothing: the answer comes before any Hello
		reason := r.expectEnd(ipc.TypeReject, ipc.CodeDenied)
		require.Equal(t, fmt.Sprintf("uid %d gid %d not in the allow-list", uid, gid), reason)

		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_, err := sdk.Dial(ctx, p.Addr, sdk.Options{Logger: testutil.Logger(t, slog.LevelError)})
		var rej *sdk.RejectError
		require.True(t, errors.As(err, &rej), "the SDK reports the Reject: %v", err)
		require.Equal(t, sdk.CodeDenied, rej.Code)
		require.Equal(t, reason, rej.Reason)
		require.Empty(t, p.Srv.Sessions())
	})
	for _, tc := range []struct {
		name       string
		uids, gids []int
	}{
		{"own uid listed", []int{uid + 1, uid}, nil},
		{"own gid listed", []int{uid + 1}, []int{gid}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProducer(t, producerOpts{Config: producer.Config{AllowUIDs: tc.uids, AllowGIDs: tc.gids}})
			next(t, dial(t, p, sdk.Options{})).Release()
		})
	}

	// A consumer of another user, in its own process: the Python consumer
	// run as nobody, on an abstract socket (no file mode to get past).
	t.Run("another user", func(t *testing.T) {
		if uid != 0 {
			t.Skipf("running a consumer as another user needs root (setuid); the tests run as uid %d", uid)
		}
		py := testutil.PythonWithMsgpack(t)
		script := readableCopy(t, filepath.Join("..", "..", "examples", "consumer-python", "consumer.py"))
		const nobody = 65534
		run := func(allow ...int) (summary map[string]any, runErr error) {
			addr := fmt.Sprintf("@framehub-allowlist-%d-%d", os.Getpid(), time.Now().UnixNano())
			startProducer(t, producerOpts{Addr: addr, Config: producer.Config{AllowUIDs: allow}})
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, py, script, "--socket", addr, "--frames", "5")
			cmd.Dir = filepath.Dir(script)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
			require.NoError(t, testutil.StartOrphanless(cmd)) // keeps the credentials, adds the orphan guard
			runErr = cmd.Wait()
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &summary), "the last stdout line is the JSON summary; stderr:\n%s", stderr.String())
			return summary, runErr
		}
		sum, err := run(0)
		require.Error(t, err, "refused: %v", sum)
		require.Equal(t, fmt.Sprintf("Reject code 3: uid %d gid %d not in the allow-list", nobody, nobody), sum["error"])

		sum, err = run(0, nobody)
		require.NoError(t, err, "admitted by its uid: %v", sum)
		require.Equal(t, 5.0, sum["frames"])
	})
}

// readableCopy copies the file at path into a new directory that every
// user may read, and returns the copy's path: a checkout may sit under a
// directory other users cannot enter.
func readableCopy(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	dir := testutil.ShortDir(t)
	require.NoError(t, os.Chmod(dir, 0o755))
	dst := filepath.Join(dir, filepath.Base(path))
	require.NoError(t, os.WriteFile(dst, b, 0o755))
	return dst
}
