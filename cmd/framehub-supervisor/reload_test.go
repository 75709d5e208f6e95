package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const waitFor = 20 * time.Second

// runChild is what this test binary does as a supervised child
// (FH_TEST_CHILD=serve): it writes its pid to $FH_MARK and waits for
// SIGTERM.
func runChild() {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	mark := os.Getenv("FH_MARK")
	_ = os.WriteFile(mark+".tmp", []byte(strconv.Itoa(os.Getpid())), 0o600)
	_ = os.Rename(mark+".tmp", mark)
	fmt.Println("child up", os.Getenv("FH_TAG"))
	<-term
	os.Exit(0)
}

// supervisorRun is framehub-supervisor (this test binary) running on a
// config file, with its log lines collected.
type supervisorRun struct {
	cmd   *exec.Cmd
	addr  string
	token string
	mu    sync.Mutex
	lines []string
}

func startGroup(t *testing.T, cfgPath, tokenFile string) *supervisorRun {
	t.Helper()
	r := &supervisorRun{}
	r.cmd = exec.Command(os.Args[0], "-config", cfgPath, "-admin", "127.0.0.1:0", "-admin-token", tokenFile)
	r.cmd.Env = append(os.Environ(), "FH_RUN_SUPERVISOR=1")
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := r.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, r.cmd.Start())
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		_ = r.cmd.Wait()
	})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			r.mu.Lock()
			r.lines = append(r.lines, sc.Text())
			r.mu.Unlock()
		}
	}()
	re := regexp.MustCompile(`msg=supervising .* admin=(\S+)`)
	r.waitLog(t, "msg=supervising")
	for _, l := range r.log() {
		if m := re.FindStringSubmatch(l); m != nil {
			r.addr = m[1]
		}
	}
	tok, err := os.ReadFile(tokenFile)
	require.NoError(t, err)
	r.token = strings.TrimSpace(string(tok))
	return r
}

func (r *supervisorRun) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// waitLog waits for a log line containing every one of parts and returns
// it.
func (r *supervisorRun) waitLog(t *testing.T, parts ...string) string {
	t.Helper()
	var found string
	require.Eventually(t, func() bool {
		for _, l := range r.log() {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(l, p)
			}
			if all {
				found = l
				return true
			}
		}
		return false
	}, waitFor, 10*time.Millisecond, "no log line with %q; log:\n%s", parts, strings.Join(r.log(), "\n"))
	return found
}

// count returns how many log lines contain s.
func (r *supervisorRun) count(s string) int {
	n := 0
	for _, l := range r.log() {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

type childStatus struct {
	Name       string `json:"name"`
	PID        int    `json:"pid"`
	State      string `json:"state"`
	Restarts   int    `json:"restarts"`
	LastExit   string `json:"last_exit"`
	LastError  string `json:"last_error"`
	WaitingFor string `json:"waiting_for"`
	Error      string `json:"error"`
}

func (r *supervisorRun) status(t *testing.T) map[string]childStatus {
	t.Helper()
	code, body := do(t, "GET", "http://"+r.addr+"/status", map[string]string{"Authorization": "Bearer " + r.token})
	require.Equal(t, http.StatusOK, code, body)
	var st struct {
		Processes []childStatus `json:"processes"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	out := map[string]childStatus{}
	for _, p := range st.Processes {
		out[p.Name] = p
	}
	return out
}

func (r *supervisorRun) hup(t *testing.T) {
	t.Helper()
	require.NoError(t, r.cmd.Process.Signal(syscall.SIGHUP))
}

// child is the config entry of a child of this test binary; its pid goes
// to dir/name.
func child(dir, name, tag string, extra ...string) string {
	self, _ := os.Executable()
	s := fmt.Sprintf("  - name: %s\n    binary: %s\n    env: [FH_TEST_CHILD=serve, FH_MARK=%s, FH_TAG=%s]\n",
		name, self, filepath.Join(dir, name), tag)
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}

// readPID waits until dir/name holds a pid other than not, and returns it.
func readPID(t *testing.T, dir, name string, not int) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return false
		}
		pid, _ = strconv.Atoi(string(b))
		return pid != 0 && pid != not
	}, waitFor, 10*time.Millisecond, "%s did not (re)start", name)
	return pid
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestReload: SIGHUP makes framehub-supervisor read its config again and
// restart only what changed — an unchanged child keeps running with the
// same pid, a changed one is restarted, a removed one stopped, an added
// one started — and a config with an error is refused while the group
// goes on. A child that fails on a bad flag shows the flag's error line,
// not "exit status 2" under its usage text, and a reload that fixes its
// entry starts it again.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "framehub.yaml")
	write := func(s string) { require.NoError(t, os.WriteFile(cfgPath, []byte(s), 0o600)) }
	self, _ := os.Executable()
	bad := fmt.Sprintf("  - name: broken\n    binary: %s\n    args: [-bogus]\n    env: [FH_RUN_SUPERVISOR=1]\n"+
		"    restart: {backoff-min: 10ms, backoff-max: 20ms, max-crashes: 2}\n", self)
	write("grace: 2s\nprocesses:\n" + child(dir, "keep", "v1") + child(dir, "change", "v1") + child(dir, "drop", "v1") + bad)
	r := startGroup(t, cfgPath, filepath.Join(dir, "admin.token"))

	keep := readPID(t, dir, "keep", 0)
	change := readPID(t, dir, "change", 0)
	drop := readPID(t, dir, "drop", 0)
	require.Eventually(t, func() bool { return r.status(t)["broken"].State == "failed" }, waitFor, 20*time.Millisecond)
	broken := r.status(t)["broken"]
	require.Equal(t, "exit status 2", broken.LastExit)
	require.Equal(t, "flag provided but not defined: -bogus", broken.LastError, "the flag's error, not the usage text after it")
	require.Contains(t, broken.Error, "last: exit status 2: flag provided but not defined: -bogus")

	// Reload: keep as it is, change's environment changes, drop goes, add
	// comes, broken is fixed (and is told to serve instead).
	write("grace: 1s\nprocesses:\n" + child(dir, "keep", "v1") + child(dir, "change", "v2") + child(dir, "add", "v1") +
		child(dir, "broken", "v1"))
	r.hup(t)
	r.waitLog(t, "msg=\"config reloaded\"", "added=add", "removed=drop", "restarted=change,broken", "unchanged=keep")
	r.waitLog(t, "reload: process changed, restarting it", "process=change", "changed=env")
	require.NotEqual(t, change, readPID(t, dir, "change", change), "the changed child runs again with a new pid")
	readPID(t, dir, "add", 0)
	readPID(t, dir, "broken", 0)
	require.Eventually(t, func() bool { return !alive(drop) }, waitFor, 10*time.Millisecond, "the removed child was stopped")
	require.True(t, alive(keep), "the unchanged child kept running")
	st := r.status(t)
	require.Equal(t, keep, st["keep"].PID)
	require.Zero(t, st["keep"].Restarts)
	require.Equal(t, 1, st["change"].Restarts, "a restart for the config")
	require.NotContains(t, st, "drop")
	require.Eventually(t, func() bool { return r.status(t)["broken"].State == "ready" }, waitFor, 20*time.Millisecond)
	logs := strings.Join(r.log(), "\n")
	require.Contains(t, logs, "change | child up v2")

	// A config with an error: refused, the group goes on as it was.
	write("grace: 1s\nprocesses:\n  - name: keep\n    binary: x\n   args: [oops]\n")
	r.hup(t)
	refused := r.waitLog(t, "config refused")
	require.Contains(t, refused, "framehub.yaml:5: did not find expected '-' indicator", "the line of the error")
	st = r.status(t)
	require.Equal(t, keep, st["keep"].PID)
	require.Len(t, st, 4)
	for name, c := range st {
		require.Equal(t, "ready", c.State, name)
	}
	code, metrics := do(t, "GET", "http://"+r.addr+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	for _, want := range []string{
		`framehub_supervisor_reloads_total{result="ok"} 1`,
		`framehub_supervisor_reloads_total{result="failed"} 1`,
		`framehub_supervisor_config_last_reload_successful 0`,
		`framehub_supervisor_restarts_total{name="keep"} 0`,
		`framehub_supervisor_crashes_total{name="broken"} 2`,
		`framehub_supervisor_last_exit_code{name="change"} 0`,
		`framehub_supervisor_last_exit_code{name="broken"} 2`,
		`framehub_build_info{daemon="framehub-supervisor"`,
	} {
		require.Contains(t, metrics, want)
	}
	require.NotContains(t, metrics, `name="drop"`, "a removed process's series are gone")
	require.Equal(t, 0, r.count("stopping the group"), "the supervisor never stopped")
}
