package daemon

import (
	"context"
	"log/slog"

	"github.com/framehub/framehub/consumers/web"
	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/daemonrun"
)

// Run serves the cameras until ctx is done: their subscriptions and the
// HTTP server run together (daemonrun.RunActors). It makes o a
// daemonrun.Program.
func (o *Options) Run(ctx context.Context, log *slog.Logger) error {
	guard, err := admin.NewGuard(o.Addr, o.Access)
	if err != nil {
		return err
	}
	cfg := o.Config()
	cfg.Logger, cfg.AdminTokenFile = log, guard.TokenFile()
	srv, err := web.New(cfg)
	if err != nil {
		return daemonrun.BadConfig(err)
	}
	ln, err := admin.Listen(o.Addr)
	if err != nil {
		return daemonrun.BadConfig(err)
	}
	names := make([]string, len(cfg.Cameras))
	for i, c := range cfg.Cameras {
		names[i] = c.Name
	}
	log.Info("framehub-web starting", "addr", o.Addr, "cameras", names)
	h := srv.Handler(guard)
	return daemonrun.RunActors(ctx, log,
		daemonrun.Actor{Name: "cameras", Run: srv.Run},
		daemonrun.Actor{Name: "web server", Run: func(ctx context.Context) error { return web.Serve(ctx, log, ln, h) }},
	)
}
