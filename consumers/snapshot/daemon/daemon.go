package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/framehub/framehub/consumers/snapshot"
	"github.com/framehub/framehub/internal/admin"
)

// Run serves snapshots until ctx is done: it subscribes to the producer
// (resubscribing with backoff when it restarts), answers the admin API on
// o.Admin, and when ctx is done stops taking requests, then finishes writing
// the snapshots it accepted.
func Run(ctx context.Context, o Options, log *slog.Logger) error {
	cfg := o.Config()
	cfg.Logger = log
	svc, err := snapshot.New(cfg)
	if err != nil {
		return err
	}
	guard, err := admin.NewGuard(o.Admin, o.Access)
	if err != nil {
		return err
	}
	ln, err := snapshot.Listen(o.Admin)
	if err != nil {
		return fmt.Errorf("-admin: %w", err)
	}
	log.Info("framehub-snapshot starting", "producer", o.Socket, "stream", o.Stream, "dir", o.Dir,
		"quality", o.Quality, "queue", o.Queue, "keep_count", o.KeepCount, "keep_bytes", int64(o.KeepBytes))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var serveErr error
	wg.Go(func() {
		serveErr = svc.Serve(ctx, ln, guard.Wrap(svc.Handler()))
		cancel() // the API failing stops the daemon
	})
	runErr := svc.Run(ctx)
	cancel()
	wg.Wait()
	if runErr != nil {
		return runErr
	}
	return serveErr
}
