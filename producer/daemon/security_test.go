package daemon

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/producer/surface"
)

// testOptions are the flag defaults for a short synthetic run: 3 small
// frames, no admin endpoint, the socket in dir.
func testOptions(t *testing.T, dir string) Options {
	t.Helper()
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	require.NoError(t, o.Load(fs, []string{"-source", "synthetic", "-width", "64", "-height", "32", "-fps", "0",
		"-frames", "3", "-admin", "", "-socket", filepath.Join(dir, "framehub.sock")}))
	return o
}

func runFor(t *testing.T, o Options) (error, string) {
	t.Helper()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := o.Run(ctx, log)
	return err, logs.String()
}

func perm(t *testing.T, p string) (os.FileMode, uint32) {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Gid
}

func TestSocketDirectoryCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "framehub")
	err, logs := runFor(t, testOptions(t, dir))
	require.NoError(t, err, logs)
	m, _ := perm(t, dir)
	require.Equal(t, os.FileMode(0o700), m, "only the producer's uid (and root) may reach its socket")

	if os.Geteuid() == 0 { // root may give the directory any group
		dir = filepath.Join(t.TempDir(), "grouped")
		o := testOptions(t, dir)
		o.SocketGroup = "4242"
		err, logs = runFor(t, o)
		require.NoError(t, err, logs)
		m, g := perm(t, dir)
		require.Equal(t, os.FileMode(0o750), m, "members of -socket-group may reach the socket")
		require.Equal(t, uint32(4242), g)
	}

	_, err = groupID("no-such-group-here")
	require.ErrorContains(t, err, `"no-such-group-here" is neither a gid nor a known group`)
}

// TestSquattedSocketDirectory is the squattable socket directory of issue
// 16: another user created the producer's directory first. The producer
// must refuse it, say what to do, and put no socket in it.
func TestSquattedSocketDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test gives the directory to another uid (65534) with chown")
	}
	for _, mode := range []os.FileMode{0o777, 0o755} {
		dir := filepath.Join(t.TempDir(), "framehub")
		require.NoError(t, os.Mkdir(dir, mode))
		require.NoError(t, os.Chmod(dir, mode))
		require.NoError(t, os.Chown(dir, 65534, 65534))
		err, _ := runFor(t, testOptions(t, dir))
		require.ErrorContains(t, err, "socket directory: unsafe directory: "+dir+" belongs to uid 65534, not to uid 0")
		require.ErrorContains(t, err, "remove it")
		ents, rerr := os.ReadDir(dir)
		require.NoError(t, rerr)
		require.Empty(t, ents, "no socket in the squatted directory")
	}
	dir := filepath.Join(t.TempDir(), "framehub")
	require.NoError(t, os.Mkdir(dir, 0o777))
	require.NoError(t, os.Chmod(dir, 0o777))
	err, _ := runFor(t, testOptions(t, dir))
	require.ErrorContains(t, err, "writable by other users")
}

// TestWritableSurfacesRefused: on a kernel without F_SEAL_FUTURE_WRITE
// (simulated) the producer does not start unless -allow-writable-surfaces
// is given, and then it says what that means.
func TestWritableSurfacesRefused(t *testing.T) {
	noSeal := func(fd, seals int) error {
		if seals&unix.F_SEAL_FUTURE_WRITE != 0 {
			return os.NewSyscallError("fcntl F_ADD_SEALS", unix.EINVAL)
		}
		return surface.AddSeals(fd, seals)
	}
	dir := filepath.Join(t.TempDir(), "framehub")
	o := testOptions(t, dir)
	o.AddSeals = noSeal
	err, _ := runFor(t, o)
	require.ErrorIs(t, err, surface.ErrNoFutureWriteSeal)
	require.ErrorContains(t, err, "unless -allow-writable-surfaces accepts that")
	_, serr := os.Stat(filepath.Join(dir, "framehub.sock"))
	require.ErrorIs(t, serr, os.ErrNotExist, "refused before the socket is made")

	o.AllowWritableSurfaces = true
	err, logs := runFor(t, o)
	require.NoError(t, err)
	require.Contains(t, logs, "surfaces are writable by consumers")

	// A DMA-BUF allocator makes no memfd: nothing to refuse (the run
	// itself needs a heap, absent here).
	o.AllowWritableSurfaces, o.Allocator = false, "dma-heap:/nonexistent/heap"
	require.NoError(t, checkSurfaces(o, slog.New(slog.DiscardHandler)))
}

// lockedBuffer is a bytes.Buffer for a logger and a test reading it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAdminEndpoints is the "information to every local user" hole of
// issue 16 for the producer: GET /consumers names pids and uids; only the
// token's holder (or everyone with -admin-public) may read it.
func TestAdminEndpoints(t *testing.T) {
	for _, public := range []bool{false, true} {
		dir := t.TempDir()
		o := testOptions(t, filepath.Join(dir, "run"))
		o.Frames, o.FPS = 0, 30
		o.Admin, o.TokenFile, o.Public = "127.0.0.1:0", filepath.Join(dir, "run", "admin.token"), public
		var logs lockedBuffer
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- o.Run(ctx, slog.New(slog.NewTextHandler(&logs, nil))) }()
		addrRE := regexp.MustCompile(`msg="admin endpoints" addr=(\S+)`)
		var addr string
		require.Eventually(t, func() bool {
			m := addrRE.FindStringSubmatch(logs.String())
			if m != nil {
				addr = m[1]
			}
			return m != nil
		}, 10*time.Second, 5*time.Millisecond, logs.String())
		tok, err := os.ReadFile(o.TokenFile)
		require.NoError(t, err)
		fi, err := os.Stat(o.TokenFile)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

		get := func(path, host, token string) (int, string) {
			req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
			require.NoError(t, err)
			if host != "" {
				req.Host = host
			}
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		code, body := get("/consumers", "", "")
		if public {
			require.Equal(t, http.StatusOK, code, body)
		} else {
			require.Equal(t, http.StatusUnauthorized, code, body)
			require.Contains(t, body, "GET /consumers needs the admin token")
		}
		code, body = get("/consumers", "", strings.TrimSpace(string(tok)))
		require.Equal(t, http.StatusOK, code, body)
		code, _ = get("/metrics", "", "")
		require.Equal(t, http.StatusOK, code, "/metrics stays open")
		code, _ = get("/healthz", "", "")
		require.Equal(t, http.StatusOK, code, "/healthz stays open")
		code, body = get("/metrics", "attacker.example:7701", "")
		require.Equal(t, http.StatusForbidden, code, "DNS rebinding: %s", body)
		cancel()
		require.NoError(t, <-done)
	}
}
