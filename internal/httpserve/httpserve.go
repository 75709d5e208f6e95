// Package httpserve runs an http.Server for as long as a context lives:
// the serve-then-shut-down sequence every framehub daemon with an HTTP
// endpoint needs.
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Serve serves srv on ln until ctx is done, then shuts srv down, giving the
// requests in flight grace to finish (srv.Shutdown also closes ln). It
// returns serveErr, the error of srv.Serve when serving failed (on its
// own, or other than by the shutdown), and shutdownErr, Shutdown's (its
// context's deadline when requests outlived grace). Callers decide whether
// a shutdown that cut requests short is an error.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration) (serveErr, shutdownErr error) {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err, nil
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	shutdownErr = srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		serveErr = err
	}
	return serveErr, shutdownErr
}
