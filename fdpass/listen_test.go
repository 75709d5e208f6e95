package fdpass

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
)

func dialCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// connect dials addr, accepts on l and returns both ends, closed at cleanup.
func connect(t *testing.T, l *Listener, addr string) (client, server *Conn) {
	t.Helper()
	client, err := Dial(dialCtx(t), addr)
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	server, err = l.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { server.Close() })
	require.NoError(t, client.SetReadDeadline(time.Now().Add(testTimeout)))
	require.NoError(t, server.SetReadDeadline(time.Now().Add(testTimeout)))
	return client, server
}

func listen(t *testing.T, addr string, cfg ListenConfig) *Listener {
	t.Helper()
	l, err := Listen(addr, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

func checkExchange(t *testing.T, client, server *Conn) {
	t.Helper()
	mfd := newMemfd(t, "over listener")
	require.NoError(t, client.Send([]byte("ping"), []int{mfd}))
	buf := make([]byte, 16)
	n, fds, err := server.Recv(buf)
	require.NoError(t, err)
	defer CloseFDs(fds)
	require.Equal(t, "ping", string(buf[:n]))
	require.Len(t, fds, 1)
	require.Equal(t, "over listener", readFD(t, fds[0]))
}

func TestListenDialPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l := listen(t, path, ListenConfig{})
	require.Equal(t, path, l.Addr().String())
	client, server := connect(t, l, path)
	checkExchange(t, client, server)

	want := Cred{PID: os.Getpid(), UID: os.Getuid(), GID: os.Getgid()}
	for _, c := range []*Conn{client, server} {
		got, err := c.PeerCred()
		require.NoError(t, err)
		require.Equal(t, want, got)
	}

	require.NoError(t, l.Close())
	_, err := os.Lstat(path)
	require.ErrorIs(t, err, fs.ErrNotExist, "Close must remove the socket file")
	require.NoError(t, l.Close())
	_, err = l.Accept()
	require.ErrorIs(t, err, net.ErrClosed)
}

func TestListenAbstract(t *testing.T) {
	addr := fmt.Sprintf("@fdpass-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	l := listen(t, addr, ListenConfig{})
	require.Equal(t, addr, l.Addr().String())
	client, server := connect(t, l, addr)
	checkExchange(t, client, server)
	require.NoError(t, l.Close())
	_, err := Dial(dialCtx(t), addr)
	require.Error(t, err)
}

func TestListenExisting(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string)
		wantErr string // "" means Listen succeeds
		inUse   bool
	}{
		{
			name: "stale socket replaced",
			setup: func(t *testing.T, path string) {
				ul, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
				require.NoError(t, err)
				ul.SetUnlinkOnClose(false)
				require.NoError(t, ul.Close())
			},
		},
		{
			name: "live listener",
			setup: func(t *testing.T, path string) {
				listen(t, path, ListenConfig{})
			},
			wantErr: "in use",
			inUse:   true,
		},
		{
			name: "live stream listener",
			setup: func(t *testing.T, path string) {
				ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
				require.NoError(t, err)
				t.Cleanup(func() { ul.Close() })
			},
			wantErr: "in use",
			inUse:   true,
		},
		{
			name: "regular file",
			setup: func(t *testing.T, path string) {
				require.NoError(t, os.WriteFile(path, []byte("keep me"), 0o644))
			},
			wantErr: "not a socket",
		},
		{
			name: "directory",
			setup: func(t *testing.T, path string) {
				require.NoError(t, os.Mkdir(path, 0o755))
			},
			wantErr: "not a socket",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.sock")
			tt.setup(t, path)
			before, err := os.Lstat(path)
			require.NoError(t, err)

			l, err := Listen(path, ListenConfig{})
			if tt.wantErr == "" {
				require.NoError(t, err)
				defer l.Close()
				client, server := connect(t, l, path)
				checkExchange(t, client, server)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			require.ErrorContains(t, err, path)
			if tt.inUse {
				require.ErrorIs(t, err, syscall.EADDRINUSE)
			}
			// The existing file is left untouched.
			after, err := os.Lstat(path)
			require.NoError(t, err)
			require.True(t, os.SameFile(before, after))
		})
	}
}

func TestListenMode(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ListenConfig
		want    os.FileMode
		wantGID int // -1: don't check
	}{
		{"default", ListenConfig{}, 0o660, -1},
		{"0600", ListenConfig{Mode: 0o600}, 0o600, -1},
		{"0666 own group", ListenConfig{Mode: 0o666, GID: os.Getgid(), SetGID: true}, 0o666, os.Getgid()},
		{"leave group", ListenConfig{GID: -1}, 0o660, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.sock")
			listen(t, path, tt.cfg)
			fi, err := os.Lstat(path)
			require.NoError(t, err)
			require.Equal(t, fs.ModeSocket, fi.Mode().Type())
			require.Equal(t, tt.want, fi.Mode().Perm())
			if tt.wantGID >= 0 {
				require.Equal(t, uint32(tt.wantGID), fi.Sys().(*syscall.Stat_t).Gid)
			}
		})
	}
}

func TestDialAcceptNoFDLeak(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l := listen(t, path, ListenConfig{})
	mfd := newMemfd(t, "leak check")
	ctx := dialCtx(t)
	buf := make([]byte, 16)

	cycle := func() {
		client, err := Dial(ctx, path)
		require.NoError(t, err)
		server, err := l.Accept()
		require.NoError(t, err)
		require.NoError(t, server.SetReadDeadline(time.Now().Add(testTimeout)))
		require.NoError(t, client.Send([]byte("x"), []int{mfd}))
		n, fds, err := server.Recv(buf)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Len(t, fds, 1)
		CloseFDs(fds)
		require.NoError(t, client.Close())
		require.NoError(t, server.Close())
	}
	cycle() // warm up lazily created runtime descriptors (netpoller)
	before := testutil.CountOwnFDs(t)
	for i := 0; i < 1000; i++ {
		cycle()
	}
	require.Equal(t, before, testutil.CountOwnFDs(t))
}
