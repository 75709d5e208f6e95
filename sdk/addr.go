package sdk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/framehub/framehub/internal/rundir"
)

// SocketName is the producer socket's file name in the default directory.
const SocketName = "framehub.sock"

// DefaultAddr returns the producer socket used when none is configured:
// $FRAMEHUB_SOCKET if set, else framehub.sock in /run/framehub for root and
// in $XDG_RUNTIME_DIR/framehub for other users. There is no fallback under
// /tmp, where another local user could create the directory first and put
// their own socket in it: without XDG_RUNTIME_DIR a user other than root
// gets "", which Dial refuses with an error saying what to set
// (LookupDefaultAddr returns that error).
func DefaultAddr() string {
	a, _ := LookupDefaultAddr()
	return a
}

// LookupDefaultAddr is DefaultAddr with the reason when there is no
// default: the error says to give the socket's path or to set
// FRAMEHUB_SOCKET or XDG_RUNTIME_DIR.
func LookupDefaultAddr() (string, error) {
	if a := os.Getenv("FRAMEHUB_SOCKET"); a != "" {
		return a, nil
	}
	dir, err := rundir.Default()
	if err != nil {
		return "", fmt.Errorf("no default producer socket: %w; give the socket's path (-socket), or set FRAMEHUB_SOCKET or XDG_RUNTIME_DIR", err)
	}
	return filepath.Join(dir, SocketName), nil
}

// AddrError returns nil when addr is set, else what is wrong: that there is
// no default address (LookupDefaultAddr's error), or that it is empty.
// Programs whose -socket flag defaults to DefaultAddr check it with this.
func AddrError(addr string) error {
	if addr != "" {
		return nil
	}
	if _, err := LookupDefaultAddr(); err != nil {
		return err
	}
	return errors.New("empty producer socket address")
}
