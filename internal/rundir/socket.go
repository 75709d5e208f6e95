package rundir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// SocketName is the producer socket's file name in the default directory.
const SocketName = "framehub.sock"

// SocketEnv names the environment variable that overrides the producer
// socket's default address.
const SocketEnv = "FRAMEHUB_SOCKET"

// DefaultSocket returns the producer socket that the producer listens on and
// consumers dial when none is configured: $FRAMEHUB_SOCKET if set, else
// SocketName in Default's directory. Without a default directory the error
// says what to set.
func DefaultSocket() (string, error) {
	if a := os.Getenv(SocketEnv); a != "" {
		return a, nil
	}
	dir, err := Default()
	if err != nil {
		return "", fmt.Errorf("no default producer socket: %w; give the socket's path (-socket), or set %s or XDG_RUNTIME_DIR", err, SocketEnv)
	}
	return filepath.Join(dir, SocketName), nil
}

// SocketError returns nil when addr is set, else what is wrong: that there
// is no default socket (DefaultSocket's error), or that it is empty.
// Programs whose -socket flag defaults to DefaultSocket's address check it
// with this.
func SocketError(addr string) error {
	if addr != "" {
		return nil
	}
	if _, err := DefaultSocket(); err != nil {
		return err
	}
	return errors.New("empty producer socket address")
}
