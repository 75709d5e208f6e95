// Package consumerpython_test tests consumer.py, the Python consumer
// written from docs/PROTOCOL.md, against a producer played by the test: a
// real SOCK_SEQPACKET socket, real fds, the reference codec, and a peer
// that closes the way the reference producer does.
package consumerpython_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/ipc"
)

const waitTimeout = 20 * time.Second

// python returns a python3 that imports msgpack, or skips the test saying
// what is missing (python3-msgpack installs into Debian's /usr/bin/python3,
// which may not be the first python3 on PATH).
func python(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"python3", "/usr/bin/python3"} {
		py, err := exec.LookPath(name)
		if err == nil && exec.Command(py, "-c", "import msgpack").Run() == nil {
			return py
		}
	}
	t.Skip("no python3 with msgpack (make deps installs python3 and python3-msgpack)")
	return ""
}

// fakeProducer listens on a socket in a temporary directory and runs
// serve on the first connection, closing it afterwards.
func fakeProducer(t *testing.T, serve func(c *fdpass.Conn)) string {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "p.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: addr, Net: "unixpacket"})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		uc, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		c, err := fdpass.New(uc)
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return addr
}

// waitUnread waits until the consumer has sent a packet that c has not
// read: closing with it unread is what makes Linux report ECONNRESET.
func waitUnread(t *testing.T, c *fdpass.Conn) {
	ok, err := fdpass.WaitReadable([]*fdpass.Conn{c}, waitTimeout)
	if err != nil || !ok {
		t.Errorf("the consumer sent nothing: %v", err)
	}
}

type summary struct {
	Frames int    `json:"frames"`
	Error  string `json:"error"`
}

// runConsumer runs consumer.py on addr and returns its JSON summary.
func runConsumer(t *testing.T, addr string) summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python(t), "consumer.py", "--socket", addr, "--no-verify", "--idle-timeout", "10")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run() // exit status 1: refused
	t.Logf("consumer.py: stdout %s stderr %s", stdout.String(), stderr.String())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var s summary
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &s), "the last stdout line is the JSON summary")
	return s
}

func send(t *testing.T, c *fdpass.Conn, m ipc.Message, fds []int) {
	b, err := ipc.NewCodec().Encode(m)
	if err == nil {
		err = c.Send(b, fds)
	}
	if err != nil {
		t.Errorf("send %v: %v", m.Type(), err)
	}
}

// The producer ends the session (Bye 8) with the consumer's Release
// unread: Linux reports ECONNRESET to the consumer's next recvmsg, ahead
// of the Bye; consumer.py reads on and reports the Bye.
func TestByeAfterReset(t *testing.T) {
	addr := fakeProducer(t, func(c *fdpass.Conn) {
		buf := make([]byte, ipc.MaxMessageSize)
		if _, _, err := c.Recv(buf); err != nil { // the Hello
			t.Errorf("hello: %v", err)
			return
		}
		caps := ipc.Caps{Format: "NV12", Width: 64, Height: 64, FPSNum: 30, FPSDen: 1,
			Planes: []ipc.Plane{{Offset: 0, Stride: 64, Size: 4096}, {Offset: 4096, Stride: 64, Size: 2048}}}
		send(t, c, &ipc.Welcome{Major: 1, Session: 1, Stream: "raw", MaxInFlight: 4, MaxHoldMS: 2000, Policy: ipc.PolicyQueue,
			Caps: caps, Pool: ipc.Pool{Max: 1, SurfaceSize: 8192, Kind: ipc.KindMemfd}}, nil)
		fd, err := unix.MemfdCreate("consumer-python-test", unix.MFD_CLOEXEC)
		if err != nil {
			t.Errorf("memfd: %v", err)
			return
		}
		defer unix.Close(fd)
		_ = unix.Ftruncate(fd, 8192)
		send(t, c, &ipc.Announce{Surfaces: []ipc.Surface{{ID: 1, Gen: 1, Size: 8192, Kind: ipc.KindMemfd, NFDs: 1}}}, []int{fd})
		send(t, c, &ipc.Frame{Lease: 1, Surface: 1, Gen: 1, Seq: 1, Size: 8192, PTS: -1, DTS: -1, Dur: -1, MonoNS: 1, RealNS: 1}, nil)
		waitUnread(t, c) // its Release
		send(t, c, &ipc.Bye{Code: ipc.CodeBadRelease, Reason: "release of lease 9, which is not live"}, nil)
	})
	s := runConsumer(t, addr)
	require.Equal(t, 1, s.Frames)
	require.Equal(t, "Bye code 8: release of lease 9, which is not live", s.Error)
}

// The producer refuses the Hello without reading it (Reject 3, as for
// credentials): the reset comes first again, then the Reject.
func TestRejectAfterReset(t *testing.T) {
	addr := fakeProducer(t, func(c *fdpass.Conn) {
		waitUnread(t, c) // the Hello
		send(t, c, &ipc.Reject{Code: ipc.CodeDenied, Reason: "uid 0 gid 0 not in the allow-list"}, nil)
	})
	s := runConsumer(t, addr)
	require.Equal(t, "Reject code 3: uid 0 gid 0 not in the allow-list", s.Error)
}
