package daemon

import (
	"context"
	"log/slog"
	"sync"

	"github.com/framehub/framehub/consumers/recorder"
	"github.com/framehub/framehub/internal/admin"
)

// Run records with the options o until ctx is done, serving the admin API
// on o.Admin. On the way out the recorder ends its segment on a keyframe,
// writes what is queued and finalises the segment.
func Run(ctx context.Context, o Options, log *slog.Logger) error {
	cfg := o.Config()
	cfg.Logger = log
	rec, err := recorder.New(cfg)
	if err != nil {
		return err
	}
	if o.Admin != "" {
		adm, err := admin.New(o.Admin, rec.Handler(), o.Access)
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := adm.Run(); err != nil {
				log.Error("admin server", "err", err)
			}
		})
		defer func() {
			adm.Close()
			wg.Wait()
		}()
		log.Info("admin endpoints", "addr", adm.Addr())
	}
	log.Info("recording", "producer", cfg.Producer, "stream", cfg.Stream, "dir", cfg.Dir, "mode", cfg.Mode,
		"segment", cfg.Segment, "fragment", cfg.Fragment)
	return rec.Run(ctx)
}
