package testutil

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// logTail is how much of a daemon's log a failing test shows: enough for
// the lines before an error, not so much that the failure drowns.
const logTail = 6000

// Daemon is a child process that logs on stderr, such as
// framehub-producer, framehub-recorder or framehub-snapshot. Its log is
// kept, and shown when the test fails.
type Daemon struct {
	Name string
	Cmd  *exec.Cmd
	Log  LockedBuffer // stderr

	t       testing.TB
	timeout time.Duration
	ready   chan struct{} // closed at the first line ready accepts
	exited  chan struct{} // closed once the process was waited for
	err     error         // Wait's, once exited is closed
}

// StartDaemon starts cmd (see StartOrphanless: it cannot outlive the test
// binary) with its stderr in Log. When ready is not nil, it is called with
// each line of the log until it returns true (on another goroutine; what
// it stores is safe to read once StartDaemon returned), and StartDaemon
// waits for that line, failing the test when the daemon exits first or no
// such line comes within timeout. timeout also bounds the wait for the
// process to exit after Kill and Stop.
//
// At cleanup the daemon is killed (Kill) if it still runs, and its log
// checked for race detector reports (CheckNoRace); nothing else to clean
// up. name is used in messages.
func StartDaemon(t testing.TB, name string, cmd *exec.Cmd, timeout time.Duration, ready func(line string) bool) *Daemon {
	t.Helper()
	d := &Daemon{Name: name, Cmd: cmd, t: t, timeout: timeout, ready: make(chan struct{}), exited: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, StartOrphanless(cmd))
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		isReady := ready == nil
		for sc.Scan() {
			line := sc.Text()
			_, _ = d.Log.Write([]byte(line + "\n"))
			if !isReady && ready(line) {
				isReady = true
				close(d.ready)
			}
		}
		// A line too long for the scanner ends the scan: keep the rest as it
		// is, and read to EOF, which Wait needs.
		_, _ = io.Copy(&d.Log, stderr)
		d.err = cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		d.Kill()
		CheckNoRace(t, fmt.Sprintf("%s (pid %d)", name, cmd.Process.Pid), d.Log.String())
		if t.Failed() {
			t.Logf("%s (pid %d) log:\n%s", name, cmd.Process.Pid, Tail(d.Log.String(), logTail))
		}
	})
	if ready == nil {
		return d
	}
	select {
	case <-d.ready:
	case <-d.exited:
		t.Fatalf("%s exited before it was ready: %v\n%s", name, d.err, Tail(d.Log.String(), logTail))
	case <-time.After(timeout):
		t.Fatalf("%s not ready within %v\n%s", name, timeout, Tail(d.Log.String(), logTail))
	}
	return d
}

// Exited is closed once the daemon exited and was waited for.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// Err returns the daemon's exit status (Wait's error) once Exited is
// closed.
func (d *Daemon) Err() error {
	<-d.exited
	return d.err
}

// Kill SIGKILLs the daemon (no clean shutdown: as a crash) unless it
// already exited, and reaps it.
func (d *Daemon) Kill() {
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.Cmd.Process.Kill()
	select {
	case <-d.exited:
	case <-time.After(d.timeout):
		d.t.Errorf("%s (pid %d) did not exit after SIGKILL", d.Name, d.Cmd.Process.Pid)
	}
}

// Stop sends SIGTERM and requires a clean exit (status 0) within the
// timeout.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	require.NoError(t, d.Cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-d.exited:
		require.NoError(t, d.err, "%s exit status after SIGTERM\n%s", d.Name, Tail(d.Log.String(), logTail))
	case <-time.After(d.timeout):
		t.Fatalf("%s did not stop on SIGTERM within %v\n%s", d.Name, d.timeout, Tail(d.Log.String(), logTail))
	}
}
