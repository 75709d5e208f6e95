package daemon

import (
	"context"
	"log/slog"

	"github.com/framehub/framehub/consumers/recorder"
	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/daemonrun"
)

// Run records with the options o until ctx is done, serving the admin API
// on o.Admin: the recorder and the admin server run together
// (daemonrun.RunActors). On the way out the recorder ends its segment on a
// keyframe, writes what is queued and finalises the segment. It makes o a
// daemonrun.Program.
func (o *Options) Run(ctx context.Context, log *slog.Logger) error {
	cfg := o.Config()
	cfg.Logger = log
	rec, err := recorder.New(cfg)
	if err != nil {
		return err
	}
	actors := []daemonrun.Actor{{Name: "recorder", Run: rec.Run}}
	if o.Admin != "" {
		adm, err := admin.New(o.Admin, rec.Handler(), o.Access)
		if err != nil {
			return err
		}
		log.Info("admin endpoints", "addr", adm.Addr())
		actors = append(actors, daemonrun.Actor{Name: "admin", Run: adm.Serve})
	}
	log.Info("recording", "producer", cfg.Producer, "stream", cfg.Stream, "dir", cfg.Dir, "mode", cfg.Mode,
		"segment", cfg.Segment, "fragment", cfg.Fragment)
	return daemonrun.RunActors(ctx, log, actors...)
}
