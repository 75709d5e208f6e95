// Package keypace paces the keyframe requests a consumer sends its
// producer for viewers that join or resynchronise (the streamer's RTSP
// viewers, framehub-web's WebRTC viewers).
package keypace

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/framehub/framehub/sdk"
)

// Pacer coalesces keyframe requests and sends them at most one per
// Interval. The producer rate-limits requests too, and silently drops one
// that comes too soon after the last: pacing them here instead, and
// checking again that someone still waits, means a viewer that arrives
// right after another still gets its keyframe. Create it with New, run Run
// for as long as requests may come.
type Pacer struct {
	interval time.Duration
	waiting  func() bool        // someone still waits for a keyframe
	client   func() *sdk.Client // the current connection; nil when none
	log      *slog.Logger
	req      chan struct{} // capacity 1: a keyframe is wanted
	sent     atomic.Uint64
}

// New returns a Pacer that sends through the connection client returns
// (nil while there is none: the next connection asks for a keyframe
// anyway) while waiting reports that a keyframe is still wanted.
func New(interval time.Duration, waiting func() bool, client func() *sdk.Client, log *slog.Logger) *Pacer {
	return &Pacer{interval: interval, waiting: waiting, client: client, log: log, req: make(chan struct{}, 1)}
}

// Request asks for a keyframe soon; requests are coalesced and paced. It
// never blocks.
func (p *Pacer) Request() {
	select {
	case p.req <- struct{}{}:
	default:
	}
}

// Pending delivers the requests Run would take, for a caller that
// answers them itself instead of running Run (a test standing in for the
// producer).
func (p *Pacer) Pending() <-chan struct{} { return p.req }

// Sent is how many requests reached the producer.
func (p *Pacer) Sent() uint64 { return p.sent.Load() }

// Run sends the requests asked for until ctx is done; it returns nil then.
func (p *Pacer) Run(ctx context.Context) error {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.req:
		}
		if wait := p.interval - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			if !p.waiting() {
				continue // a keyframe came meanwhile
			}
		}
		c := p.client()
		if c == nil {
			continue // the next connection requests one anyway
		}
		if err := c.RequestKeyframe(); err != nil {
			p.log.Debug("keyframe request not sent", "err", err)
			continue
		}
		last = time.Now()
		p.sent.Add(1)
	}
}
