// Package admin serves a daemon's admin endpoints (/metrics, /healthz,
// /status...) on a TCP address or a Unix socket, behind the access control
// every framehub daemon shares (Guard): /metrics and /healthz are open,
// everything else needs the admin token of a 0600 file the daemon writes
// and framehubctl reads (GET endpoints may be opened with -admin-public),
// and requests from other web sites or through DNS rebinding are refused.
// docs/SECURITY.md tells the model.
package admin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/framehub/framehub/internal/httpserve"
)

// Listen listens on addr: "host:port", or "unix:/path" for a Unix socket
// (a stale socket file is replaced; the new one has mode 0600).
func Listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
				_ = c.Close()
				return nil, fmt.Errorf("admin: listen %s: address in use", addr)
			}
			_ = os.Remove(path)
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("admin: listen %s: %w", addr, err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("admin: listen %s: %w", addr, err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen %s: %w", addr, err)
	}
	return ln, nil
}

// Server is an admin HTTP server: New listens, Serve serves until its
// context ends (a daemonrun.Actor's Run).
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// New listens on addr for h behind the Guard of a (NewGuard). The caller
// must Serve it (or Close it without serving).
func New(addr string, h http.Handler, a Access) (*Server, error) {
	g, err := NewGuard(addr, a)
	if err != nil {
		return nil, err
	}
	ln, err := Listen(addr)
	if err != nil {
		return nil, err
	}
	return &Server{ln: ln, srv: &http.Server{Handler: g.Wrap(h), ReadHeaderTimeout: 5 * time.Second}}, nil
}

// Addr is the address served (with the port chosen for ":0").
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx is done, then stops, giving requests in flight a
// second to finish, and returns nil.
func (s *Server) Serve(ctx context.Context) error {
	// A request cut short by the end of the grace is no failure.
	if err, _ := httpserve.Serve(ctx, s.srv, s.ln, closeGrace); err != nil {
		return fmt.Errorf("admin: serve %s: %w", s.ln.Addr(), err)
	}
	return nil
}

// closeGrace is how long stopping waits for the requests in flight.
const closeGrace = time.Second

// Close stops serving (or closes the listener of a server never served),
// giving requests in flight a second to finish.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	_ = s.ln.Close()
}
