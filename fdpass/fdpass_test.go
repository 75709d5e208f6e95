package fdpass

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/testutil"
)

const testTimeout = 10 * time.Second

// newMemfd returns a memfd holding content, closed at test cleanup.
func newMemfd(t *testing.T, content string) int {
	t.Helper()
	fd, err := unix.MemfdCreate("fdpass-test", unix.MFD_CLOEXEC)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	_, err = unix.Write(fd, []byte(content))
	require.NoError(t, err)
	return fd
}

// readFD reads up to 4 KiB from the start of fd without moving its offset.
func readFD(t *testing.T, fd int) string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Pread(fd, buf, 0)
	require.NoError(t, err)
	return string(buf[:n])
}

// pair returns a connected Pair with a read deadline on both ends, closed at
// test cleanup.
func pair(t *testing.T) (a, b *Conn) {
	t.Helper()
	a, b, err := Pair()
	require.NoError(t, err)
	t.Cleanup(func() { a.Close(); b.Close() })
	require.NoError(t, a.SetReadDeadline(time.Now().Add(testTimeout)))
	require.NoError(t, b.SetReadDeadline(time.Now().Add(testTimeout)))
	return a, b
}

// TestMain runs the child side of TestPassFDCrossProcess when the test
// binary is re-executed as its helper; the child stays silent on success.
func TestMain(m *testing.M) {
	testutil.RunHelper(map[string]func() int{"fdpass-child": func() int {
		if err := helperChild(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 1
		}
		return 0
	}})
	os.Exit(m.Run())
}

func helperChild() error {
	c, err := FromFile(os.NewFile(3, "fdpass-child"))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(testTimeout)); err != nil {
		return err
	}
	fd, err := unix.MemfdCreate("fdpass-child", unix.MFD_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("hello from child")); err != nil {
		return err
	}
	if err := c.Send([]byte("memfd"), []int{fd}); err != nil {
		return err
	}
	buf := make([]byte, 16)
	n, fds, err := c.Recv(buf)
	if err != nil {
		return err
	}
	CloseFDs(fds)
	if got := string(buf[:n]); got != "ack" || len(fds) != 0 {
		return fmt.Errorf("got reply %q with %d fds, want \"ack\" with 0", got, len(fds))
	}
	return nil
}

func TestPassFDCrossProcess(t *testing.T) {
	a, b := pair(t)
	f, err := b.File()
	require.NoError(t, err)
	require.NoError(t, b.Close())

	var stderr, stdout bytes.Buffer
	cmd := testutil.HelperCommand("fdpass-child")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stderr = &stderr
	cmd.Stdout = &stdout
	require.NoError(t, cmd.Start())
	f.Close()
	waited := false
	defer func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	buf := make([]byte, 64)
	n, fds, err := a.Recv(buf)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		waited = true
		t.Fatalf("recv from child: %v; child stderr: %s", err, stderr.String())
	}
	defer CloseFDs(fds)
	require.Equal(t, "memfd", string(buf[:n]))
	require.Len(t, fds, 1)
	require.Equal(t, "hello from child", readFD(t, fds[0]))
	require.NoError(t, a.Send([]byte("ack"), nil))

	waited = true
	err = cmd.Wait()
	require.Empty(t, stderr.String(), "child wrote to stderr")
	require.Empty(t, stdout.String(), "child wrote to stdout")
	require.NoError(t, err)
}

func TestSendRecvFDCounts(t *testing.T) {
	tests := []struct {
		name  string
		nfds  int
		fdErr error
	}{
		{"none", 0, nil},
		{"one", 1, nil},
		{"max", MaxFDs, nil},
		{"too many", MaxFDs + 1, ErrTooManyFDs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := pair(t)
			mfd := newMemfd(t, "content-"+tt.name)
			fds := make([]int, tt.nfds)
			for i := range fds {
				fds[i] = mfd
			}
			payload := []byte("payload-" + tt.name)
			before := testutil.CountOwnFDs(t)
			err := a.Send(payload, fds)
			if tt.fdErr != nil {
				require.ErrorIs(t, err, tt.fdErr)
				// Nothing was sent.
				require.NoError(t, b.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
				_, got, err := b.Recv(make([]byte, 64))
				require.ErrorIs(t, err, os.ErrDeadlineExceeded)
				require.Nil(t, got)
				require.Equal(t, before, testutil.CountOwnFDs(t))
				return
			}
			require.NoError(t, err)
			// Borrowed fd is still open in the sender.
			_, err = unix.FcntlInt(uintptr(mfd), unix.F_GETFD, 0)
			require.NoError(t, err)

			buf := make([]byte, 64)
			n, got, err := b.Recv(buf)
			require.NoError(t, err)
			require.Equal(t, payload, buf[:n])
			require.Len(t, got, tt.nfds)
			seen := map[int]bool{}
			for _, fd := range got {
				require.False(t, seen[fd], "fd %d returned twice", fd)
				seen[fd] = true
				require.Equal(t, "content-"+tt.name, readFD(t, fd))
				flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
				require.NoError(t, err)
				require.NotZero(t, flags&unix.FD_CLOEXEC, "fd %d lacks FD_CLOEXEC", fd)
			}
			require.Equal(t, before+tt.nfds, testutil.CountOwnFDs(t))
			CloseFDs(got)
			require.Equal(t, before, testutil.CountOwnFDs(t))
		})
	}
}

func TestSendInvalid(t *testing.T) {
	a, _ := pair(t)
	require.Error(t, a.Send(nil, nil))
	require.Error(t, a.TrySend([]byte{}, nil))
	_, _, err := a.Recv(nil)
	require.Error(t, err)
}

func TestRecvEOF(t *testing.T) {
	tests := []struct {
		name  string
		close func(*Conn) error
	}{
		{"Close", (*Conn).Close},
		{"CloseWrite", (*Conn).CloseWrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := pair(t)
			require.NoError(t, a.Send([]byte("last"), nil))
			require.NoError(t, tt.close(a))
			buf := make([]byte, 16)
			n, _, err := b.Recv(buf)
			require.NoError(t, err)
			require.Equal(t, "last", string(buf[:n]))
			_, fds, err := b.Recv(buf)
			require.ErrorIs(t, err, io.EOF)
			require.Nil(t, fds)
		})
	}
}

func TestCloseIdempotent(t *testing.T) {
	a, _ := pair(t)
	require.NoError(t, a.Close())
	require.NoError(t, a.Close())
	_, _, err := a.Recv(make([]byte, 8))
	require.ErrorIs(t, err, net.ErrClosed)
	require.ErrorIs(t, a.Send([]byte("x"), nil), net.ErrClosed)
}

func TestReadDeadline(t *testing.T) {
	a, _ := pair(t)
	require.NoError(t, a.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	start := time.Now()
	_, fds, err := a.Recv(make([]byte, 8))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.Nil(t, fds)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestPeerCredPair(t *testing.T) {
	a, b := pair(t)
	want := Cred{PID: os.Getpid(), UID: os.Getuid(), GID: os.Getgid()}
	for _, c := range []*Conn{a, b} {
		got, err := c.PeerCred()
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
}

func TestNewRejectsOtherSocketTypes(t *testing.T) {
	tests := []struct {
		name string
		typ  int
	}{
		{"stream", unix.SOCK_STREAM},
		{"dgram", unix.SOCK_DGRAM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := testutil.CountOwnFDs(t)
			fds, err := unix.Socketpair(unix.AF_UNIX, tt.typ|unix.SOCK_CLOEXEC, 0)
			require.NoError(t, err)
			defer unix.Close(fds[1])
			_, err = FromFile(os.NewFile(uintptr(fds[0]), "not-seqpacket"))
			require.ErrorContains(t, err, "SOCK_SEQPACKET")
			require.Equal(t, before+1, testutil.CountOwnFDs(t)) // only fds[1] remains
		})
	}
}

func TestFileRoundTrip(t *testing.T) {
	a, b := pair(t)
	f, err := b.File()
	require.NoError(t, err)
	require.NoError(t, b.Close())
	b2, err := FromFile(f)
	require.NoError(t, err)
	defer b2.Close()
	require.NoError(t, b2.SetReadDeadline(time.Now().Add(testTimeout)))
	require.NoError(t, a.Send([]byte("via file"), nil))
	buf := make([]byte, 16)
	n, _, err := b2.Recv(buf)
	require.NoError(t, err)
	require.Equal(t, "via file", string(buf[:n]))
}

func TestDialCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Dial(ctx, "@fdpass-nonexistent")
	require.Error(t, err)
}
