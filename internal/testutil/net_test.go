package testutil

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The address refuses connections, and nobody can listen on it while the
// test holds it.
func TestRefusingAddr(t *testing.T) {
	addr := RefusingAddr(t)
	_, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.True(t, errors.Is(err, syscall.ECONNREFUSED), "dial %s: %v", addr, err)
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
	}
	require.True(t, errors.Is(err, syscall.EADDRINUSE), "listen %s: %v", addr, err)
}
