package fdpass

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/testutil"
)

// fill sends packets with TrySend until the send buffer is full and returns
// how many went out.
func fill(t *testing.T, c *Conn) int {
	t.Helper()
	pkt := make([]byte, 4096)
	for i := 0; i < 1_000_000; i++ {
		err := c.TrySend(pkt, nil)
		if errors.Is(err, ErrWouldBlock) {
			return i
		}
		require.NoError(t, err)
	}
	t.Fatal("send buffer never filled")
	return 0
}

func TestTrySendWouldBlock(t *testing.T) {
	for _, blocking := range []bool{false, true} {
		t.Run(fmt.Sprintf("blocking=%t", blocking), func(t *testing.T) {
			a, b := pair(t)
			require.NoError(t, a.SetBlocking(blocking))
			sent := fill(t, a)
			require.Positive(t, sent)

			mfd := newMemfd(t, "x")
			before := testutil.CountOwnFDs(t)
			start := time.Now()
			err := a.TrySend([]byte("more"), []int{mfd})
			require.ErrorIs(t, err, ErrWouldBlock)
			require.Less(t, time.Since(start), time.Second)
			require.Equal(t, before, testutil.CountOwnFDs(t))

			if !blocking {
				// Send waits, bounded by the write deadline.
				require.NoError(t, a.SetWriteDeadline(time.Now().Add(50*time.Millisecond)))
				require.ErrorIs(t, a.Send([]byte("more"), nil), os.ErrDeadlineExceeded)
				require.NoError(t, a.SetWriteDeadline(time.Time{}))
			}

			// Draining the peer makes room again.
			buf := make([]byte, 4096)
			for i := 0; i < sent; i++ {
				n, fds, err := b.Recv(buf)
				require.NoError(t, err)
				require.Equal(t, 4096, n)
				require.Nil(t, fds)
			}
			require.NoError(t, a.TrySend([]byte("more"), nil))
		})
	}
}

func TestSendWaitsForSpace(t *testing.T) {
	a, b := pair(t)
	sent := fill(t, a)
	done := make(chan error, 1)
	go func() { done <- a.Send([]byte("after"), nil) }()
	buf := make([]byte, 4096)
	for i := 0; i < sent; i++ {
		_, _, err := b.Recv(buf)
		require.NoError(t, err)
	}
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(testTimeout):
		t.Fatal("Send did not complete after the buffer drained")
	}
	n, _, err := b.Recv(buf)
	require.NoError(t, err)
	require.Equal(t, "after", string(buf[:n]))
}

func isNonblock(t *testing.T, c *Conn) bool {
	t.Helper()
	var flags int
	var ferr error
	require.NoError(t, c.control(func(fd int) {
		flags, ferr = unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	}))
	require.NoError(t, ferr)
	return flags&unix.O_NONBLOCK != 0
}

func TestBlockingMode(t *testing.T) {
	a, b := pair(t)
	require.NoError(t, a.SetBlocking(true))
	require.NoError(t, b.SetBlocking(true))
	for _, c := range []*Conn{a, b} {
		require.False(t, isNonblock(t, c), "socket still O_NONBLOCK after SetBlocking(true)")
	}
	// Watchdog: if anything hangs, closing both ends unblocks it.
	watchdog := time.AfterFunc(testTimeout, func() { a.Close(); b.Close() })
	defer watchdog.Stop()

	type result struct {
		n   int
		fds []int
		err error
	}
	results := make(chan result, 2)
	tid := make(chan int, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- unix.Gettid()
		buf := make([]byte, 64)
		for i := 0; i < 2; i++ {
			n, fds, err := b.Recv(buf)
			results <- result{n, fds, err}
			if err != nil {
				return
			}
		}
	}()

	mfd := newMemfd(t, "blocking")
	require.NoError(t, a.Send([]byte("hello"), []int{mfd}))
	r := <-results
	require.NoError(t, r.err)
	require.Equal(t, 5, r.n)
	require.Len(t, r.fds, 1)
	require.Equal(t, "blocking", readFD(t, r.fds[0]))
	CloseFDs(r.fds)

	// The second Recv blocks in recvmsg; Close must unblock it promptly.
	waitInSyscall(t, <-tid, unix.SYS_RECVMSG)
	start := time.Now()
	require.NoError(t, b.Close())
	select {
	case r := <-results:
		require.Less(t, time.Since(start), time.Second)
		require.Nil(t, r.fds)
		require.True(t, errors.Is(r.err, io.EOF) || errors.Is(r.err, net.ErrClosed), "err = %v", r.err)
	case <-time.After(time.Second):
		t.Fatal("blocked Recv not released by Close within 1s")
	}

	// Blocking mode is for good; its socket is out of the netpoller.
	require.Error(t, a.SetBlocking(false))
	require.Nil(t, a.Unix())
	require.NoError(t, a.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, _, err := a.Recv(make([]byte, 8))
	require.ErrorIs(t, err, io.EOF) // b is closed
}

func TestBlockingDeadline(t *testing.T) {
	a, _ := pair(t)
	require.NoError(t, a.SetBlocking(true))
	require.NoError(t, a.SetReadDeadline(time.Now().Add(30*time.Millisecond)))
	start := time.Now()
	_, _, err := a.Recv(make([]byte, 8))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.Less(t, time.Since(start), time.Second)
	require.NoError(t, a.SetReadDeadline(time.Time{}))
	cred, err := a.PeerCred()
	require.NoError(t, err)
	require.Equal(t, os.Getpid(), cred.PID)
	f, err := a.File()
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func TestBlockingCloseUnblocksSend(t *testing.T) {
	a, _ := pair(t)
	fill(t, a)
	require.NoError(t, a.SetBlocking(true))
	done := make(chan error, 1)
	tid := make(chan int, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- unix.Gettid()
		done <- a.Send([]byte("stuck"), nil)
	}()
	waitInSyscall(t, <-tid, unix.SYS_SENDMSG)
	require.NoError(t, a.Close())
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(time.Second):
		t.Fatal("blocked Send not released by Close within 1s")
	}
}

// waitInSyscall waits until thread tid of this process sleeps in system
// call nr, as /proc/self/task/TID/syscall shows it ("47 0x…" while blocked
// in recvmsg on amd64, "running" while running), failing the test after
// testTimeout: a test of what unblocks a blocked call must know the call
// is blocked, not merely started.
func waitInSyscall(t *testing.T, tid, nr int) {
	t.Helper()
	path := fmt.Sprintf("/proc/self/task/%d/syscall", tid)
	var last string
	if !testutil.Poll(testTimeout, time.Millisecond, func() bool {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		last = strings.TrimSpace(string(b))
		f := strings.Fields(last)
		return len(f) > 0 && f[0] == strconv.Itoa(nr)
	}) {
		t.Fatalf("thread %d not blocked in system call %d within %v: %s says %q", tid, nr, testTimeout, path, last)
	}
}
