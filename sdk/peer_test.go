package sdk_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/sdk"
)

// otherUID is another local user: the impostor of TestUntrustedProducer.
const otherUID = 65534

// TestImpostorHelper is the impostor's main when SDK_IMPOSTOR_SOCK is set:
// another local user listening where the consumer expects its producer.
// It prints "ready", then what the first connection sent it: "received N
// bytes" (answering a Reject) or "received nothing".
func TestImpostorHelper(t *testing.T) {
	path := os.Getenv("SDK_IMPOSTOR_SOCK")
	if path == "" {
		return
	}
	if err := impostor(path); err != nil {
		fmt.Fprintln(os.Stderr, "impostor:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func impostor(path string) error {
	ln, err := fdpass.Listen(path, fdpass.ListenConfig{Mode: 0o666})
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println("ready")
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		return err
	}
	buf := make([]byte, ipc.MaxMessageSize)
	n, fds, err := c.Recv(buf)
	fdpass.CloseFDs(fds)
	if errors.Is(err, io.EOF) || (err == nil && n == 0) {
		fmt.Println("received nothing")
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Printf("received %d bytes\n", n)
	b, err := ipc.NewCodec().Encode(&ipc.Reject{Code: ipc.CodeDenied, Reason: "impostor"})
	if err != nil {
		return err
	}
	return c.Send(b, nil)
}

// asOtherUser returns a command that runs the test binary as uid 65534,
// running only the test named test with env added: the test binary is
// copied where that user can execute it, and the copy's directory (mode
// 0755) is returned.
func asOtherUser(t *testing.T, test string, env ...string) (*exec.Cmd, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the helper runs as another uid (65534)")
	}
	dir, err := os.MkdirTemp("", "fh-uid-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "sdk.test")
	self, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, self, 0o755))
	cmd := exec.Command(bin, "-test.run=^"+test+"$", "-test.count=1", "-test.timeout=1m")
	cmd.Env = append(append(os.Environ(), env...), "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	return cmd, dir
}

// startImpostor runs the impostor as uid 65534, listening at a socket in a
// directory of that user, and returns the socket's path, the impostor's pid
// and its output lines after "ready".
func startImpostor(t *testing.T) (string, int, <-chan string) {
	t.Helper()
	cmd, dir := asOtherUser(t, "TestImpostorHelper")
	sockDir := filepath.Join(dir, "framehub")
	require.NoError(t, os.Mkdir(sockDir, 0o777))
	require.NoError(t, os.Chown(sockDir, otherUID, otherUID))
	sock := filepath.Join(sockDir, "framehub.sock")
	cmd.Env = append(cmd.Env, "SDK_IMPOSTOR_SOCK="+sock)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := make(chan string, 4)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	require.Equal(t, "ready", nextLine(t, lines))
	return sock, cmd.Process.Pid, lines
}

func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		require.True(t, ok, "the impostor exited early")
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("no line from the impostor in 30 s")
		return ""
	}
}

// TestUntrustedProducer is the squatted socket of issue 16 from the
// consumer's side: another user listens where the producer should be. The
// SDK must refuse it before sending its Hello, and say whom it found.
func TestUntrustedProducer(t *testing.T) {
	t.Setenv(sdk.ProducerUIDEnv, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	sock, pid, lines := startImpostor(t)
	_, err := sdk.Dial(ctx, sock, sdk.Options{Stream: "raw", Logger: quietLogger(t, nil)})
	require.ErrorIs(t, err, sdk.ErrUntrustedProducer)
	require.ErrorContains(t, err, fmt.Sprintf("%s is served by pid %d running as uid %d", sock, pid, otherUID))
	require.ErrorContains(t, err, "the expected uids are 0;")
	require.ErrorContains(t, err, "set FRAMEHUB_PRODUCER_UID=65534")
	require.Equal(t, "received nothing", nextLine(t, lines), "the Hello (and the consumer's name) must not reach the impostor")

	// The operator says the producer runs as 65534: the SDK talks to it.
	for name, opts := range map[string]sdk.Options{
		"Options.ProducerUIDs": {Stream: "raw", ProducerUIDs: []int{otherUID}},
		"environment":          {Stream: "raw"},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "environment" {
				t.Setenv(sdk.ProducerUIDEnv, "1, "+strconv.Itoa(otherUID))
			}
			sock, _, lines := startImpostor(t)
			opts.Logger = quietLogger(t, nil)
			_, err := sdk.Dial(ctx, sock, opts)
			var rej *sdk.RejectError
			require.ErrorAs(t, err, &rej, "the impostor answers the Hello with a Reject")
			require.Equal(t, "impostor", rej.Reason)
			require.Regexp(t, `^received \d+ bytes$`, nextLine(t, lines))
		})
	}
}

func TestProducerUIDEnv(t *testing.T) {
	t.Setenv(sdk.ProducerUIDEnv, "no-such-user-here")
	_, err := sdk.Dial(context.Background(), "/nonexistent.sock", sdk.Options{})
	require.ErrorContains(t, err, `FRAMEHUB_PRODUCER_UID="no-such-user-here": "no-such-user-here" is neither a uid nor a known user name`)

	// A user name is looked up: root is uid 0, and the producer of this
	// test runs as this process's uid, which is then not expected unless 0.
	t.Setenv(sdk.ProducerUIDEnv, "root")
	sock := filepath.Join(t.TempDir(), "p.sock")
	startProducer(t, sock, 30, producer.Config{})
	c, err := sdk.Dial(context.Background(), sock, sdk.Options{Logger: quietLogger(t, nil)})
	if os.Geteuid() == 0 {
		require.NoError(t, err)
		c.Close()
	} else {
		require.ErrorIs(t, err, sdk.ErrUntrustedProducer)
	}
}

// TestNoDefaultHelper prints, as a user other than root without
// XDG_RUNTIME_DIR (SDK_NO_DEFAULT=1), DefaultAddr and Dial's error.
func TestNoDefaultHelper(t *testing.T) {
	if os.Getenv("SDK_NO_DEFAULT") != "1" {
		return
	}
	_, err := sdk.Dial(context.Background(), sdk.DefaultAddr(), sdk.Options{})
	fmt.Printf("%q\n%v\n", sdk.DefaultAddr(), err)
	os.Exit(0)
}

// TestNoDefaultAddress: a user without XDG_RUNTIME_DIR has no default
// socket (no /tmp fallback), and Dial says what to set.
func TestNoDefaultAddress(t *testing.T) {
	cmd, _ := asOtherUser(t, "TestNoDefaultHelper", "SDK_NO_DEFAULT=1", "XDG_RUNTIME_DIR=", "FRAMEHUB_SOCKET=")
	out, err := cmd.Output()
	require.NoError(t, err)
	require.Equal(t, `""
sdk: dial: no default producer socket: XDG_RUNTIME_DIR is not set and uid 65534 is not root; `+
		"give the socket's path (-socket), or set FRAMEHUB_SOCKET or XDG_RUNTIME_DIR\n", string(out))
}

func TestDialWithoutAddress(t *testing.T) {
	_, err := sdk.Dial(context.Background(), "", sdk.Options{})
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "sdk: dial: "), err)
}
