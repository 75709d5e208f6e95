package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/framehub/framehub/consumers/snapshot"
	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/daemonrun"
)

// Run serves snapshots until ctx is done: the service (its subscription
// to the producer, resubscribing with backoff when it restarts, and its
// write queue) and its admin API run together (daemonrun.RunActors). When
// ctx is done the API stops taking requests and the service finishes
// writing the snapshots it accepted. It makes o a daemonrun.Program.
func (o *Options) Run(ctx context.Context, log *slog.Logger) error {
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
	return daemonrun.RunActors(ctx, log,
		daemonrun.Actor{Name: "snapshot service", Run: svc.Run},
		daemonrun.Actor{Name: "admin API", Run: func(ctx context.Context) error { return svc.Serve(ctx, ln, guard.Wrap(svc.Handler())) }},
	)
}
