package snapshot_test

import (
	"bytes"
	"context"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/consumers/snapshot"
	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/testutil"
)

// buildBinaries builds framehub-snapshot and framehubctl with cgo off,
// which proves they need none, and returns the directory of the binaries
// the tests run: those, or, when the tests run with the race detector
// (which needs cgo), the same built with it.
func buildBinaries(t *testing.T) string {
	t.Helper()
	pkgs := []string{"github.com/framehub/framehub/cmd/framehub-snapshot", "github.com/framehub/framehub/cmd/framehubctl"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	require.NoError(t, testutil.GoBuild(ctx, dir, []string{"CGO_ENABLED=0"}, pkgs...))
	if testutil.RaceEnabled {
		dir = t.TempDir()
		require.NoError(t, testutil.GoBuild(ctx, dir, nil, pkgs...))
	}
	return dir
}

// daemonProc is a running framehub-snapshot process.
type daemonProc struct {
	*testutil.Daemon
	addr string // of its admin API
}

var listeningRE = regexp.MustCompile(`msg="admin API listening" addr=(\S+)`)

// startDaemon starts framehub-snapshot with args and waits until its admin
// API listens and it is healthy. It is killed at cleanup if still running.
func startDaemon(t *testing.T, bin string, args ...string) *daemonProc {
	t.Helper()
	d := &daemonProc{}
	d.Daemon = testutil.StartDaemon(t, "framehub-snapshot", exec.Command(filepath.Join(bin, "framehub-snapshot"), args...), waitTimeout,
		func(line string) bool {
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				d.addr = m[1]
				return true
			}
			return false
		})
	c := snapshot.NewClient(d.addr)
	defer c.Close()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		h, err := c.Health(ctx)
		return err == nil && h.OK
	}, waitTimeout, 10*time.Millisecond, "framehub-snapshot not healthy:\n%s", d.Log.String())
	return d
}

// ctl runs framehubctl and returns its exit status, stdout and stderr.
func ctl(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "framehubctl"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, stdout.String(), stderr.String()
}

// children counts the processes whose parent is pid.
func children(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces: split after ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			n++
		}
	}
	return n
}

// TestDaemon drives real framehub-snapshot and framehubctl processes.
func TestDaemon(t *testing.T) {
	bin := buildBinaries(t)
	p := startProducer(t, producerOpts{Width: 640, Height: 480, FPS: 60})
	dir := filepath.Join(t.TempDir(), "snaps")
	// The daemon writes its admin token there, framehubctl reads it.
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	t.Setenv(admin.TokenFileEnv, tokenFile)
	d := startDaemon(t, bin, "-socket", p.Addr, "-admin", "127.0.0.1:0", "-dir", dir, "-keep-count", "50")
	pid := d.Cmd.Process.Pid
	token, err := admin.ReadToken(tokenFile)
	require.NoError(t, err)

	t.Run("framehubctl snapshot -o", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "now.jpg")
		code, stdout, stderr := ctl(t, bin, "snapshot", "-addr", d.addr, "-o", out)
		require.Equal(t, 0, code, "stderr: %s", stderr)
		require.Contains(t, stdout, "wrote "+out)
		data, err := os.ReadFile(out)
		require.NoError(t, err)
		ly, lc := patternError(t, data, 640, 480, 640, 480)
		require.Less(t, ly, 6.0)
		require.Less(t, lc, 6.0)
	})

	t.Run("framehubctl snapshot -scale -wait -json", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "small.jpg")
		code, stdout, stderr := ctl(t, bin, "snapshot", "-addr", d.addr, "-o", out, "-scale", "320", "-quality", "60", "-wait", "-json")
		require.Equal(t, 0, code, "stderr: %s", stderr)
		require.Contains(t, stdout, `"durable": true`)
		require.Contains(t, stdout, `"quality": 60`)
		f, err := os.Open(out)
		require.NoError(t, err)
		cfg, err := jpeg.DecodeConfig(f)
		f.Close()
		require.NoError(t, err)
		require.Equal(t, [2]int{320, 240}, [2]int{cfg.Width, cfg.Height})
	})

	t.Run("curl style: Accept image/jpeg", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+d.addr+"/snapshot?scale=160", nil)
		require.NoError(t, err)
		req.Header.Set("Accept", "image/jpeg")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "image/jpeg", resp.Header.Get("Content-Type"))
		require.NotEmpty(t, resp.Header.Get("X-Snapshot-Id"))
		_, err = jpeg.Decode(resp.Body)
		require.NoError(t, err)
	})

	t.Run("other users and web pages are refused", func(t *testing.T) {
		before, err := os.ReadDir(dir)
		require.NoError(t, err)
		post := func(hdr map[string]string) (int, string) {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+d.addr+"/snapshot", strings.NewReader("quality=90"))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range hdr {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		// A form POST from a web page: foreign Host (DNS rebinding) or
		// foreign Origin, no token.
		code, body := post(map[string]string{"Host": "attacker.example:7704", "Origin": "http://attacker.example:7704"})
		require.Equal(t, http.StatusForbidden, code, body)
		code, body = post(map[string]string{"Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"})
		require.Equal(t, http.StatusForbidden, code, body)
		// Even with the token, a cross-site page is refused.
		code, body = post(map[string]string{"Origin": "http://attacker.example", "Authorization": "Bearer " + token})
		require.Equal(t, http.StatusForbidden, code, body)
		// Another local process without the token.
		code, body = post(nil)
		require.Equal(t, http.StatusUnauthorized, code, body)
		require.Contains(t, body, "POST /snapshot needs the admin token")

		// framehubctl run by another user cannot read the token.
		if os.Geteuid() == 0 {
			other, err := os.MkdirTemp("", "fh-ctl-") // t.TempDir's parent is closed to other users
			require.NoError(t, err)
			defer os.RemoveAll(other)
			require.NoError(t, os.Chmod(other, 0o755))
			ctlCopy := filepath.Join(other, "framehubctl")
			b, err := os.ReadFile(filepath.Join(bin, "framehubctl"))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(ctlCopy, b, 0o755))
			cmd := exec.Command(ctlCopy, "snapshot", "-addr", d.addr, "-token-file", tokenFile)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "%s", out)
			require.Equal(t, 1, ee.ExitCode(), "%s", out)
			require.Contains(t, string(out), "answered HTTP 401")
			require.Contains(t, string(out), "framehubctl sent no token: admin token: open "+tokenFile+": permission denied")
		}
		after, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Equal(t, len(before), len(after), "no snapshot taken, none deleted by retention")
	})

	t.Run("no fd leak across 100 snapshots", func(t *testing.T) {
		c := snapshot.NewClient(d.addr)
		defer c.Close()
		c.SetToken(token)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		take := func(i int) string {
			req := snapshot.Request{}
			if i%3 == 1 {
				req.Scale = 320
			}
			if i%5 == 2 {
				req.Encoder = snapshot.EncoderGo
			}
			st, _, err := c.Take(ctx, req, i%2 == 0)
			require.NoError(t, err)
			return st.ID
		}
		settle := func(id string) {
			st, err := c.Status(ctx, id, waitTimeout)
			require.NoError(t, err)
			require.True(t, st.Durable, "%+v", st)
			require.Eventually(t, func() bool { return daemonIdle(ctx, c) }, waitTimeout, 5*time.Millisecond)
		}
		for i := range 5 {
			settle(take(i)) // warm: encoders started, connection open
		}
		before := testutil.CountFDs(t, pid)
		// In rounds of 25, each settled before the next: the daemon's
		// write queue holds 32, and 100 at once overflow it (503 storage
		// busy, rightly) where fsync is slow, as on a loaded CI machine.
		const round = 25
		for r := range 100 / round {
			var ids []string
			for i := range round {
				ids = append(ids, take(r*round+i))
			}
			for _, id := range ids {
				settle(id)
			}
		}
		require.Eventually(t, func() bool { return testutil.CountFDs(t, pid) <= before }, waitTimeout, 5*time.Millisecond,
			"framehub-snapshot had %d fds before 100 snapshots, %d after", before, testutil.CountFDs(t, pid))
		t.Logf("framehub-snapshot fds: %d before, %d after 100 snapshots; child processes: %d", before, testutil.CountFDs(t, pid), children(t, pid))
		require.LessOrEqual(t, children(t, pid), 4, "gst-launch children are bounded")
		ents, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, ents, 50, "retention keeps -keep-count files")
	})

	t.Run("unreachable daemon", func(t *testing.T) {
		addr := testutil.RefusingAddr(t)
		code, _, stderr := ctl(t, bin, "snapshot", "-addr", addr, "-o", filepath.Join(t.TempDir(), "x.jpg"))
		require.Equal(t, 1, code)
		require.Equal(t, "framehubctl snapshot: cannot reach framehub-snapshot at "+addr+": connection refused\n", stderr)
	})

	t.Run("framehubctl usage", func(t *testing.T) {
		code, _, stderr := ctl(t, bin)
		require.Equal(t, 2, code)
		require.Contains(t, stderr, "snapshot")
		code, _, stderr = ctl(t, bin, "snapshto")
		require.Equal(t, 2, code)
		require.Contains(t, stderr, `unknown command "snapshto"`)
		code, _, stderr = ctl(t, bin, "snapshot", "-scale", "320", "-width", "100")
		require.Equal(t, 2, code)
		require.Contains(t, stderr, "not both")
	})

	t.Run("help documents every flag", func(t *testing.T) {
		out, err := exec.Command(filepath.Join(bin, "framehub-snapshot"), "-h").CombinedOutput()
		require.NoError(t, err, "-h exits 0")
		for _, f := range []string{"-socket", "-admin", "-dir", "-quality", "-queue", "-keep-count", "-keep-bytes",
			"-webhook", "-event-socket", "-encoder", "-config", "-frame-timeout", "-max-hold", "-log-level"} {
			require.Contains(t, string(out), "  "+f+" ", "help lacks %s", f)
		}
	})

	t.Run("config errors name file, line and key", func(t *testing.T) {
		for _, c := range []struct{ file, want string }{
			{"quality: 90\nqualty: 80\n", "cfg.yaml:2: qualty: unknown key"},
			{"dir: /tmp\nqueue: 0\n", "cfg.yaml:2: queue: 0 must be ≥ 1"},
			{"keep-bytes: lots\n", `cfg.yaml:1: keep-bytes: invalid value "lots"`},
		} {
			path := filepath.Join(t.TempDir(), "cfg.yaml")
			require.NoError(t, os.WriteFile(path, []byte(c.file), 0o600))
			out, err := exec.Command(filepath.Join(bin, "framehub-snapshot"), "-config", path).CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee)
			require.Equal(t, 2, ee.ExitCode())
			require.Contains(t, string(out), c.want)
		}
	})

	t.Run("SIGTERM stops cleanly", func(t *testing.T) {
		d.Stop(t)
		require.Contains(t, d.Log.String(), "stopping framehub-snapshot")
		require.Equal(t, 0, children(t, pid))
	})
}

// daemonIdle reports whether the daemon's write queue is empty.
func daemonIdle(ctx context.Context, c *snapshot.Client) bool {
	h, err := c.Health(ctx)
	return err == nil && h.QueueDepth == 0
}
