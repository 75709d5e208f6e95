package recorder_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// nobody is the user the recorder runs as here: not the producer's.
const nobody = 65534

// startRecorderAs runs framehub-recorder as uid nobody with the given
// supplementary groups, its files (recordings, admin socket and token) in
// a directory of its own; it returns the admin address and a function
// that reads its log so far.
func startRecorderAs(t *testing.T, sock string, groups []uint32) (string, func() string) {
	t.Helper()
	home := filepath.Join(t.TempDir(), "rec")
	require.NoError(t, os.Mkdir(home, 0o700))
	require.NoError(t, os.Chown(home, nobody, nobody))
	admin := "unix:" + filepath.Join(home, "admin.sock")
	cmd := exec.Command(filepath.Join(binDir, "framehub-recorder"), "-socket", sock, "-dir", filepath.Join(home, "recordings"),
		"-admin", admin, "-admin-token", filepath.Join(home, "admin.token"), "-segment", "2s")
	logPath := filepath.Join(t.TempDir(), "recorder.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	defer logFile.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = logFile, logFile
	log := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: groups}}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("recorder's log:\n%s", log())
		}
	})
	return admin, log
}

type recorderHealth struct {
	OK        bool   `json:"ok"`
	Status    string `json:"status"`
	Reason    string `json:"reason"`
	Since     string `json:"since"`
	Connected bool   `json:"connected"`
}

// health fetches the recorder's /healthz (zero when it does not answer).
func health(admin string) (int, recorderHealth) {
	var h recorderHealth
	code, body, err := httpDo(admin, http.MethodGet, "/healthz", nil)
	if err != nil || json.Unmarshal(body, &h) != nil {
		return 0, recorderHealth{}
	}
	return code, h
}

// TestUnreachableProducer: a recorder that cannot reach its producer's
// socket is unhealthy (503, "not_connected"), and its /healthz and its log
// say which directory refuses it and which group it lacks; given that
// group, it subscribes and is healthy.
func TestUnreachableProducer(t *testing.T) {
	needGst(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root: the recorder runs as another user (uid 65534) than the producer")
	}
	grp, err := user.LookupGroup("daemon")
	if err != nil {
		t.Skip("no group daemon on this machine to give the producer's socket")
	}
	gid, _ := strconv.Atoi(grp.Gid)
	base := t.TempDir()
	for d := base; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755)) // t.TempDir's directories are 0700: let uid 65534 reach run/
	}
	require.NoError(t, os.Chmod(binDir, 0o755), "uid 65534 runs the recorder from there")
	run := filepath.Join(base, "run")
	p := startProducer(t, run, "-socket-group", "daemon")

	admin, log := startRecorderAs(t, p.sock, nil)
	var h recorderHealth
	var code int
	require.Eventually(t, func() bool {
		code, h = health(admin)
		return h.Status == "not_connected" && strings.Contains(h.Reason, "permission denied")
	}, waitTimeout, 20*time.Millisecond, "recorder's health: %d %+v", code, h)
	t.Logf("/healthz: %d %+v", code, h)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.False(t, h.OK)
	require.False(t, h.Connected)
	require.NotEmpty(t, h.Since)
	want := "may not search the directory " + run + " (owner root, group daemon, mode 0750): add nobody to group daemon"
	require.Contains(t, h.Reason, "not subscribed to the producer at "+p.sock)
	require.Contains(t, h.Reason, want)
	require.Eventually(t, func() bool {
		return strings.Contains(log(), "cannot subscribe to the producer, retrying") && strings.Contains(log(), want)
	}, waitTimeout, 20*time.Millisecond, "the log says which group is missing")

	// In the producer's group, it subscribes and records.
	admin, _ = startRecorderAs(t, p.sock, []uint32{uint32(gid)})
	require.Eventually(t, func() bool {
		code, h = health(admin)
		return code == http.StatusOK
	}, waitTimeout, 20*time.Millisecond, "recorder's health: %d %+v", code, h)
	require.Equal(t, recorderHealth{OK: true, Status: "ok", Since: h.Since, Connected: true}, h)
}
