package fdpass

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// staleProbeTimeout bounds the connect used to tell a live listener from a
// stale socket file.
const staleProbeTimeout = time.Second

// Dial connects to the "unixpacket" listener at addr, which is a filesystem
// path or "@name" for the Linux abstract namespace. The caller owns the
// returned Conn and must Close it.
func Dial(ctx context.Context, addr string) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unixpacket", addr)
	if err != nil {
		return nil, fmt.Errorf("fdpass: dial %q: %w", addr, err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("fdpass: dial %q: unexpected connection type %T", addr, c)
	}
	return New(uc)
}

// ListenConfig configures Listen. The zero value is ready to use: mode 0660
// and the socket file's group left as created.
//
// Mode and GID apply only to filesystem path sockets, not to abstract
// "@name" addresses. They are applied right after the socket is bound, so
// for a brief moment the file carries the permissions the umask gave it.
type ListenConfig struct {
	// Mode is the socket file's permission bits; 0 means 0660.
	Mode os.FileMode
	// GID is the group to give the socket file. A positive GID is always
	// applied; a negative GID leaves the group alone, and so does 0 (the zero
	// value) unless SetGID is true.
	GID int
	// SetGID forces GID to be applied even when it is 0 (group root).
	SetGID bool
}

// Listener accepts SOCK_SEQPACKET Unix connections. It owns its socket and,
// for path addresses, the socket file, which Close removes.
type Listener struct {
	ul        *net.UnixListener
	closeOnce sync.Once
}

// Listen listens for "unixpacket" connections on addr, a filesystem path or
// "@name" for the Linux abstract namespace.
//
// For a path, an existing socket file that refuses connections (left behind
// by a process that died) is removed first. If something is listening there,
// Listen returns an error wrapping syscall.EADDRINUSE; if the path exists and
// is not a socket, Listen returns an error naming it and leaves it alone.
// After binding, the file's mode and group are set from cfg.
//
// The caller owns the returned Listener and must Close it.
func Listen(addr string, cfg ListenConfig) (*Listener, error) {
	if addr == "" {
		return nil, errors.New("fdpass: listen: empty address")
	}
	abstract := strings.HasPrefix(addr, "@")
	if !abstract {
		if err := removeStale(addr); err != nil {
			return nil, err
		}
	}
	ul, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: addr, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("fdpass: listen %q: %w", addr, err)
	}
	l := &Listener{ul: ul}
	if abstract {
		return l, nil
	}
	ul.SetUnlinkOnClose(true)
	mode := cfg.Mode.Perm()
	if mode == 0 {
		mode = 0o660
	}
	if err := os.Chmod(addr, mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("fdpass: listen %q: %w", addr, err)
	}
	if cfg.GID > 0 || (cfg.SetGID && cfg.GID == 0) {
		if err := os.Lchown(addr, -1, cfg.GID); err != nil {
			l.Close()
			return nil, fmt.Errorf("fdpass: listen %q: set group %d: %w", addr, cfg.GID, err)
		}
	}
	return l, nil
}

// removeStale removes a socket file at path that no process listens on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fdpass: listen %q: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("fdpass: listen %q: existing file is not a socket (mode %v)", path, fi.Mode())
	}
	ctx, cancel := context.WithTimeout(context.Background(), staleProbeTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unixpacket", path)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("fdpass: listen %q: address in use by a live listener: %w", path, syscall.EADDRINUSE)
	case errors.Is(err, syscall.ECONNREFUSED):
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("fdpass: listen %q: remove stale socket: %w", path, err)
		}
		return nil
	case errors.Is(err, syscall.EPROTOTYPE):
		// Bound by a live socket of another type (e.g. SOCK_STREAM).
		return fmt.Errorf("fdpass: listen %q: address in use by a socket of another type: %w", path, syscall.EADDRINUSE)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, syscall.EAGAIN):
		// A listener whose backlog is full is alive.
		return fmt.Errorf("fdpass: listen %q: address in use by a busy listener: %w", path, syscall.EADDRINUSE)
	default:
		return fmt.Errorf("fdpass: listen %q: probe existing socket: %w", path, err)
	}
}

// Accept waits for and returns the next connection. The caller owns the
// returned Conn and must Close it. After Close, Accept returns an error
// wrapping net.ErrClosed.
func (l *Listener) Accept() (*Conn, error) {
	uc, err := l.ul.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("fdpass: accept: %w", err)
	}
	return New(uc)
}

// Close stops listening and, for path addresses, removes the socket file.
// Connections already accepted stay open. It is safe to call more than once;
// later calls return nil.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		if cerr := l.ul.Close(); cerr != nil {
			err = fmt.Errorf("fdpass: close listener: %w", cerr)
		}
	})
	return err
}

// Addr returns the listening address (a *net.UnixAddr).
func (l *Listener) Addr() net.Addr {
	return l.ul.Addr()
}
