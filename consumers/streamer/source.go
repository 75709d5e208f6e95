package streamer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framehub/framehub/internal/keypace"
	"github.com/framehub/framehub/sdk"
)

// Lease terms asked of the producer. The streamer holds one frame at a time,
// only while it copies the access unit out of the mapping; a short MaxHold
// is honest and lets the producer evict a streamer that hangs.
const (
	leaseBudget = 4
	leaseHold   = 2 * time.Second
)

// source subscribes to the producer's encoded stream, copies every access
// unit out of the shared mapping, releases the lease at once, and hands the
// copy to the hub. It reconnects when the producer goes away (the SDK's
// Reconnect, and a redial loop around it for the first connection and for
// refusals), skips to a keyframe after every gap, and keeps timestamps on
// one continuous timeline (see timeline).
type source struct {
	o      *Config
	socket string // the producer's
	log    *slog.Logger
	hub    *hub

	keys *keypace.Pacer // keyframe requests for joining and resynchronising viewers

	mu     sync.Mutex
	client *sdk.Client // current subscription; nil between dials

	tl timeline // used by consume only

	received, producerDropped, resyncDropped, badAUs, dials, reconnects atomic.Uint64
}

func newSource(o *Config, socket string, log *slog.Logger) *source {
	s := &source{o: o, socket: socket, log: log}
	s.keys = keypace.New(o.KeyframeInterval, func() bool { return s.hub.waitingForKey() }, s.currentClient, log)
	return s
}

// currentClient is the current subscription; nil between dials.
func (s *source) currentClient() *sdk.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client
}

// run receives frames until ctx is done. It returns nil then; it never
// gives up on the producer by itself.
func (s *source) run(ctx context.Context) error {
	sdk.Persist(ctx, s.log, s.o.ReconnectMax, s.dial, func(ctx context.Context, c *sdk.Client) error {
		defer func() {
			s.mu.Lock()
			s.client = nil
			s.mu.Unlock()
		}()
		return s.consume(ctx, c)
	}, "socket", s.socket, "stream", s.o.Stream)
	return nil
}

func (s *source) dial(ctx context.Context) (*sdk.Client, error) {
	s.dials.Add(1)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := sdk.Dial(dctx, s.socket, sdk.Options{
		Stream: s.o.Stream, Name: s.o.Name, MaxInFlight: leaseBudget, MaxHold: leaseHold,
		Reconnect: true, ReconnectMax: s.o.ReconnectMax, Logger: s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to stream %q at %s: %w", s.o.Stream, s.socket, err)
	}
	caps := c.Caps()
	s.log.Info("subscribed to the producer", "socket", s.socket, "stream", s.o.Stream, "format", caps.Format,
		"codec", caps.Codec, "width", caps.Width, "height", caps.Height)
	s.mu.Lock()
	s.client = c
	s.mu.Unlock()
	return c, nil
}

// consume handles frames of one subscription until it fails or ctx is
// done. After an eviction (it held a lease past MaxHold: the process was
// stopped or starved) the SDK resubscribes by itself.
func (s *source) consume(ctx context.Context, c *sdk.Client) error {
	s.hub.gap()
	s.keys.Request() // for the parameter sets, and any waiting viewer
	waitKey := true
	var seenReconnects uint64
	return c.Consume(ctx, func(f *sdk.Frame) error {
		s.received.Add(1)
		s.hub.received(time.Now())
		s.producerDropped.Add(uint64(f.Dropped()))
		if n := c.Stats().Reconnects; n > seenReconnects {
			s.reconnects.Add(n - seenReconnects)
			seenReconnects = n
		}
		if f.Discont() {
			// Frames are missing (skipped for us, or the producer
			// restarted): the next P-frames reference pictures we never
			// got. Wait for a keyframe, and ask for one.
			if !waitKey {
				s.log.Debug("discontinuity from the producer; waiting for a keyframe", "seq", f.Seq(), "dropped", f.Dropped())
			}
			waitKey = true
			s.hub.gap()
			s.keys.Request()
		}
		if waitKey && !f.Keyframe() {
			f.Release()
			s.resyncDropped.Add(1)
			return nil
		}
		au, err := s.copyOut(f)
		if err != nil {
			// The frames after it may reference it: resynchronise.
			s.badAUs.Add(1)
			s.log.Warn("access unit skipped", "seq", f.Seq(), "err", err)
			waitKey = true
			s.hub.gap()
			s.keys.Request()
			return nil
		}
		if waitKey && !au.key {
			s.resyncDropped.Add(1)
			return nil
		}
		waitKey = false
		if au.key {
			if sps, pps := parameterSets(au.nalus); sps != nil && pps != nil && s.hub.setParams(sps, pps) {
				s.log.Info("stream parameter sets", "sps_bytes", len(sps), "pps_bytes", len(pps))
			}
		}
		au.pts, _ = s.tl.next(au.times)
		s.hub.publish(au)
		return nil
	})
}

// copyOut copies f's access unit out of the shared mapping and releases
// the lease: from here on nothing the streamer does (slow viewers, a
// publisher reconnecting) can make it hold a lease.
func (s *source) copyOut(f *sdk.Frame) (*accessUnit, error) {
	defer f.Release()
	data, err := f.Data()
	if err != nil {
		return nil, fmt.Errorf("frame %d: %w", f.Seq(), err)
	}
	buf := make([]byte, len(data))
	copy(buf, data)
	au, err := newAccessUnit(buf, f.Keyframe())
	if err != nil {
		return nil, fmt.Errorf("frame %d (%d bytes): %w", f.Seq(), len(buf), err)
	}
	clk := f.Capture()
	if clk <= 0 {
		clk = f.Received()
	}
	au.times = frameTimes{pts: f.PTS(), dts: f.DTS(), dur: f.Duration(), clock: clk}
	au.recv = time.Now()
	au.ntp = f.Realtime()
	if au.ntp.UnixNano() <= 0 { // unknown
		au.ntp = au.recv
	}
	return au, nil
}
