package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
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
	orphanGuard(cmd)
	return cmd.Start()
}

func orphanGuard(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// helperVar names, in a re-executed test binary's environment, the helper
// RunHelper runs instead of the tests.
const helperVar = "FRAMEHUB_TEST_HELPER"

// helperTimeout ends a helper process that outlived any test that could
// want it: its parent lost it (the orphan guard covers the parent dying,
// not a parent that forgot to stop it).
const helperTimeout = 5 * time.Minute

// HelperCommand returns a command that re-executes the test binary as the
// helper process name, one of those its TestMain gives RunHelper, with env
// added to its environment. The child carries the orphan guard (see
// StartOrphanless) however the caller starts it, and runs without the race
// detector's one-second delay at exit. The caller starts the command,
// waits for it and kills it at cleanup.
func HelperCommand(name string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, helperVar+"="+name, "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	orphanGuard(cmd)
	return cmd
}

// RunHelper is the first call of the TestMain of a package whose tests
// re-execute the test binary as helper processes (HelperCommand). In the
// test run itself it returns at once. In a helper process it runs the
// helper HelperCommand named, which must be one of helpers, and exits with
// the status the helper returns: the tests and the testing package's own
// output never run there, so a helper owns its stdout, and no test passes
// for having done nothing. A helper still running after 5 minutes prints
// every goroutine's stack on stderr and exits with status 2.
func RunHelper(helpers map[string]func() int) {
	name, ok := os.LookupEnv(helperVar)
	if !ok {
		return
	}
	// Children of the helper are not helpers.
	_ = os.Unsetenv(helperVar)
	main, ok := helpers[name]
	if !ok {
		names := make([]string, 0, len(helpers))
		for n := range helpers {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "%s=%q: no such helper in this test binary (it has %s)\n", helperVar, name, strings.Join(names, ", "))
		os.Exit(2)
	}
	time.AfterFunc(helperTimeout, func() {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		fmt.Fprintf(os.Stderr, "helper %q still running after %v: its parent lost it\n%s", name, helperTimeout, buf[:n])
		os.Exit(2)
	})
	os.Exit(main())
}
