package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMain runs main instead of the tests when FH_RUN_SUPERVISOR=1: the
// test binary is then framehub-supervisor, with the command line it got.
// With FH_TEST_CHILD=serve (which wins: children inherit the supervisor's
// environment) it is a supervised child (runChild).
func TestMain(m *testing.M) {
	if os.Getenv("FH_TEST_CHILD") == "serve" {
		runChild()
		return
	}
	if os.Getenv("FH_RUN_SUPERVISOR") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// startSupervisor runs framehub-supervisor (this test binary) on a group of
// one sleeping process and returns its admin address.
func startSupervisor(t *testing.T, cfg string, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "framehub.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg+"processes:\n  - name: sleeper\n    binary: sleep\n    args: [\"60\"]\n"), 0o600))
	cmd := exec.Command(os.Args[0], append([]string{"-config", path, "-admin", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "FH_RUN_SUPERVISOR=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	addrc := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(` admin=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "supervising") {
				addrc <- m[1]
			}
		}
	}()
	select {
	case addr := <-addrc:
		return addr
	case <-time.After(30 * time.Second):
		t.Fatal("framehub-supervisor did not log its admin address")
		return ""
	}
}

func do(t *testing.T, method, url string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
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

// TestAdminAccess is the "information to every local user" hole of issue
// 16 for the supervisor: /status (pids) and /logs (every child's output)
// need the admin token, unless admin-public; /metrics and /healthz do not.
func TestAdminAccess(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	addr := startSupervisor(t, "admin-token: "+tokenFile+"\n")
	tok, err := os.ReadFile(tokenFile)
	require.NoError(t, err)
	bearer := map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(tok))}
	base := "http://" + addr
	for _, p := range []string{"/status", "/logs?name=sleeper"} {
		code, body := do(t, "GET", base+p, nil)
		require.Equal(t, http.StatusUnauthorized, code, "%s: %s", p, body)
		require.NotContains(t, body, "sleeper\"", "%s shows nothing without the token", p)
		code, body = do(t, "GET", base+p, bearer)
		require.Equal(t, http.StatusOK, code, "%s: %s", p, body)
		code, _ = do(t, "GET", base+p, map[string]string{"Authorization": bearer["Authorization"], "Host": "rebound.example"})
		require.Equal(t, http.StatusForbidden, code, "%s through DNS rebinding", p)
	}
	code, body := do(t, "GET", base+"/status", bearer)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"name":"sleeper"`)
	for _, p := range []string{"/metrics", "/healthz"} {
		code, _ := do(t, "GET", base+p, nil)
		require.Equal(t, http.StatusOK, code, p)
	}

	// admin-public (the flag overrides the file) opens the GET endpoints.
	addr = startSupervisor(t, "admin-token: "+tokenFile+"\nadmin-public: false\n", "-admin-public")
	code, body = do(t, "GET", "http://"+addr+"/status", nil)
	require.Equal(t, http.StatusOK, code, body)
	code, _ = do(t, "GET", "http://"+addr+"/status", map[string]string{"Origin": "http://evil.example"})
	require.Equal(t, http.StatusForbidden, code, "a web page's cross-origin read")
}
