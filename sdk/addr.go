package sdk

import (
	"fmt"
	"os"
	"path/filepath"
)

// DefaultAddr returns the producer socket used when none is configured:
// $FRAMEHUB_SOCKET if set; /run/framehub/framehub.sock for root;
// $XDG_RUNTIME_DIR/framehub/framehub.sock for other users; else
// /tmp/framehub-<uid>/framehub.sock.
func DefaultAddr() string {
	if a := os.Getenv("FRAMEHUB_SOCKET"); a != "" {
		return a
	}
	if os.Geteuid() == 0 {
		return "/run/framehub/framehub.sock"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "framehub", "framehub.sock")
	}
	return fmt.Sprintf("/tmp/framehub-%d/framehub.sock", os.Geteuid())
}
