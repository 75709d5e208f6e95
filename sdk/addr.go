package sdk

import "github.com/framehub/framehub/internal/rundir"

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
func LookupDefaultAddr() (string, error) { return rundir.DefaultSocket() }

// AddrError returns nil when addr is set, else what is wrong: that there is
// no default address (LookupDefaultAddr's error), or that it is empty.
// Programs whose -socket flag defaults to DefaultAddr check it with this.
func AddrError(addr string) error { return rundir.SocketError(addr) }
