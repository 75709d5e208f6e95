package fdpass

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Cred is the identity of the process at the other end of a Conn, as
// recorded by the kernel when the connection was made (SO_PEERCRED).
type Cred struct {
	PID, UID, GID int
}

// PeerCred returns the peer's credentials (SO_PEERCRED). For a listening
// socket's accepted Conn and for a dialed Conn they are those of the peer
// process at connect/listen time; for a Pair they are those of the process
// that called socketpair, even after one end is handed to a child.
func (c *Conn) PeerCred() (Cred, error) {
	var uc *unix.Ucred
	var serr error
	if err := c.control(func(fd int) {
		uc, serr = unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Cred{}, fmt.Errorf("fdpass: peer cred: %w", err)
	}
	if serr != nil {
		return Cred{}, fmt.Errorf("fdpass: peer cred: %w", os.NewSyscallError("getsockopt SO_PEERCRED", serr))
	}
	return Cred{PID: int(uc.Pid), UID: int(uc.Uid), GID: int(uc.Gid)}, nil
}
