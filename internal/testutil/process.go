package testutil

import (
	"os"
	"os/exec"
	"syscall"
)

// StartOrphanless starts cmd so that the child is SIGKILLed when the test
// binary dies (PR_SET_PDEATHSIG), even when a test timeout or a SIGKILL
// ends the test binary before its cleanups run: daemons and RTSP clients
// left behind by killed test runs used to pile up on the test machines.
// The caller still waits for cmd and kills it at cleanup as usual.
//
// The kernel ties the signal to the OS thread that forked the child. Go
// ends a thread only when a goroutine locked to it (runtime.LockOSThread)
// exits, so as long as the caller is not such a goroutine the signal comes
// when the test binary exits, not earlier.
func StartOrphanless(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd.Start()
}

// HelperCommand returns a command that re-executes the test binary running
// only the test named test, with env added to its environment. That test
// is the helper process's main: it must return at once unless a variable
// the caller puts in env says it runs as a helper, so that it passes as a
// no-op in the ordinary test run.
//
// The child runs with -test.timeout=5m so that a helper the parent lost
// panics (its stacks on stderr) rather than lingering, and without the race
// detector's one-second delay at exit. The caller starts the command,
// waits for it and kills it at cleanup.
func HelperCommand(test string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	return cmd
}
