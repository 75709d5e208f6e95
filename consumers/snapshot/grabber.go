package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/sdk"
)

// grabber owns the subscription to the producer's raw stream. It runs one
// goroutine (run) that receives every frame and releases it at once, unless
// a request waits for a frame captured at or after its time: then it
// encodes that frame for every such request and releases the frame as soon
// as the encoders no longer read it.
//
// Why receive and release every frame instead of holding one: a held frame
// is a surface out of the producer's pool and a lease that MaxHold would
// end with an eviction; a snapshot is of the scene at or after the trigger,
// which the frame already received cannot show anyway. Why policy latest
// with a budget of 1: while an encode holds the one frame, the producer
// keeps the newest frame for us and delivers it the moment we release, so a
// second trigger during an encode is served without waiting for the next
// capture; and the producer reads a latest consumer's releases at once (it
// gives it a reader of its own), so its view of this consumer is 0 frames
// in flight whenever no snapshot is being encoded. The cost is one wake-up
// per frame while idle (~0.1 ms of CPU, see docs/bench/snapshot.md).
type grabber struct {
	addr string
	opts sdk.Options
	log  *slog.Logger
	m    *metrics

	reqs      chan *grabReq
	client    atomic.Pointer[sdk.Client]
	caps      atomic.Pointer[sdk.Caps]
	connected chan struct{} // closed at the first successful subscription
	stopped   chan struct{} // closed when run returns
	holdOver  atomic.Int64  // largest (lease hold - encode time) seen, ns
}

// grabReq asks for one encode of the first frame captured at or after after.
type grabReq struct {
	ctx                    context.Context
	after                  int64
	enc                    Encoder
	width, height, quality int
	res                    chan grabResult // capacity 1
}

type grabResult struct {
	jpeg         []byte
	seq          uint64
	capture      int64
	realtime     time.Time
	encode, hold time.Duration
	err          error
}

func newGrabber(addr string, opts sdk.Options, log *slog.Logger, m *metrics) *grabber {
	return &grabber{addr: addr, opts: opts, log: log, m: m, reqs: make(chan *grabReq, 64),
		connected: make(chan struct{}), stopped: make(chan struct{})}
}

// isConnected reports whether the subscription is up now.
func (g *grabber) isConnected() bool {
	c := g.client.Load()
	return c != nil && c.Subscription().Session != 0
}

// frameSize returns the stream's frame size, 0×0 before the first subscription.
func (g *grabber) frameSize() (int, int) {
	if c := g.caps.Load(); c != nil {
		return c.Width, c.Height
	}
	return 0, 0
}

// stats returns the subscription's counters.
func (g *grabber) stats() sdk.Stats {
	if c := g.client.Load(); c != nil {
		return c.Stats()
	}
	return sdk.Stats{}
}

// grab queues r and waits for its result until r.ctx is done.
func (g *grabber) grab(r *grabReq) grabResult {
	select {
	case g.reqs <- r:
	case <-r.ctx.Done():
		return grabResult{err: context.Cause(r.ctx)}
	case <-g.stopped:
		return grabResult{err: ErrStopping}
	}
	select {
	case res := <-r.res:
		return res
	case <-r.ctx.Done():
		return grabResult{err: context.Cause(r.ctx)}
	case <-g.stopped:
		return grabResult{err: ErrStopping}
	}
}

// run subscribes (retrying with backoff until it succeeds) and serves
// requests until ctx is done. The SDK redials by itself when the producer
// restarts (Options.Reconnect).
func (g *grabber) run(ctx context.Context) error {
	defer close(g.stopped)
	c, err := g.dial(ctx)
	if err != nil {
		return nil // ctx done
	}
	defer func() {
		g.client.Store(nil)
		c.Close()
	}()
	var pending []*grabReq
	for {
		f, err := c.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var rej *sdk.RejectError
			switch {
			case errors.Is(err, sdk.ErrEvicted):
				// Only an encode longer than MaxHold gets here; the next
				// Next reconnects.
				g.log.Error("evicted by the producer: an encode held a frame past max-hold", "max_hold", g.opts.MaxHold)
			case errors.As(err, &rej):
				g.log.Error("the producer refused the subscription; retrying", "err", err)
				if !wait(ctx, g.opts.ReconnectMax) {
					return nil
				}
			default:
				return fmt.Errorf("snapshot: receive from %s: %w", g.addr, err)
			}
			continue
		}
		if f.Discont() {
			caps := c.Caps()
			g.caps.Store(&caps)
		}
		pending = g.collect(pending)
		var due []*grabReq
		keep := pending[:0]
		for _, r := range pending {
			if r.after <= f.Capture() {
				due = append(due, r)
			} else {
				keep = append(keep, r)
			}
		}
		clear(pending[len(keep):])
		pending = keep
		if len(due) == 0 {
			f.Release()
			continue
		}
		g.serve(c, f, due)
	}
}

// dial subscribes, retrying with exponential backoff while the producer is
// not there. It fails only when ctx is done.
func (g *grabber) dial(ctx context.Context) (*sdk.Client, error) {
	backoff := g.opts.ReconnectMin
	for attempt := 1; ; attempt++ {
		c, err := sdk.Dial(ctx, g.addr, g.opts)
		if err == nil {
			caps := c.Caps()
			g.caps.Store(&caps)
			g.client.Store(c)
			close(g.connected)
			g.log.Info("subscribed to the producer", "socket", g.addr, "stream", g.opts.Stream,
				"size", fmt.Sprintf("%dx%d", caps.Width, caps.Height), "format", caps.Format, "budget", c.Subscription().MaxInFlight)
			return c, nil
		}
		level := slog.LevelDebug
		if attempt == 1 {
			level = slog.LevelWarn
		}
		g.log.Log(ctx, level, "cannot subscribe to the producer yet; retrying", "socket", g.addr, "attempt", attempt, "retry_in", backoff, "err", err)
		if !wait(ctx, backoff) {
			return nil, ctx.Err()
		}
		backoff = min(backoff*2, g.opts.ReconnectMax)
	}
}

// collect adds the queued requests to pending and drops those whose
// requester gave up.
func (g *grabber) collect(pending []*grabReq) []*grabReq {
	for {
		select {
		case r := <-g.reqs:
			pending = append(pending, r)
			continue
		default:
		}
		break
	}
	keep := pending[:0]
	for _, r := range pending {
		if r.ctx.Err() == nil {
			keep = append(keep, r)
		}
	}
	clear(pending[len(keep):])
	return keep
}

// serve encodes f for the due requests (once per distinct encoder, size and
// quality), then answers them. The frame is released as soon as the last
// encoder stops reading it, and the release is flushed at once so that the
// producer can reuse the surface.
func (g *grabber) serve(c *sdk.Client, f *sdk.Frame, due []*grabReq) {
	var hold time.Duration
	released := false
	release := func() {
		if released {
			return
		}
		released = true
		f.Release()
		hold = time.Duration(clock.Mono() - f.Received())
		if err := c.Flush(); err != nil {
			g.log.Warn("send release", "err", err)
		}
	}
	src, err := FrameNV12(f, c.Caps())
	type group struct {
		r      *grabReq
		reqs   []*grabReq
		jpeg   []byte
		encode time.Duration
		err    error
	}
	var groups []*group
	for _, r := range due {
		found := false
		for _, gr := range groups {
			if gr.r.enc == r.enc && gr.r.width == r.width && gr.r.height == r.height && gr.r.quality == r.quality {
				gr.reqs = append(gr.reqs, r)
				found = true
				break
			}
		}
		if !found {
			groups = append(groups, &group{r: r, reqs: []*grabReq{r}})
		}
	}
	var encodeTotal time.Duration
	for i, gr := range groups {
		if err != nil {
			gr.err = err
			continue
		}
		if gr.r.width > src.Width || gr.r.height > src.Height {
			gr.err = fmt.Errorf("%w: %dx%d is larger than the frame (%dx%d)", ErrInvalid, gr.r.width, gr.r.height, src.Width, src.Height)
			continue
		}
		done := func() {}
		if i == len(groups)-1 {
			done = release
		}
		t0 := time.Now()
		gr.jpeg, gr.err = gr.r.enc.Encode(gr.r.ctx, src, gr.r.width, gr.r.height, gr.r.quality, done)
		gr.encode = time.Since(t0)
		encodeTotal += gr.encode
		g.m.encode.WithLabelValues(gr.r.enc.Name()).Observe(gr.encode.Seconds())
	}
	release()
	g.m.hold.Observe(hold.Seconds())
	if over := int64(hold - encodeTotal); over > g.holdOver.Load() {
		g.holdOver.Store(over)
	}
	for _, gr := range groups {
		for _, r := range gr.reqs {
			r.res <- grabResult{jpeg: gr.jpeg, seq: f.Seq(), capture: f.Capture(), realtime: f.Realtime(),
				encode: gr.encode, hold: hold, err: gr.err}
		}
	}
}

// FrameNV12 returns the view of a raw frame's planes, for an Encoder; it
// is valid until f is released.
func FrameNV12(f *sdk.Frame, caps sdk.Caps) (NV12, error) {
	if caps.Format != "NV12" {
		return NV12{}, fmt.Errorf("snapshot: the stream carries %q frames; snapshots need NV12", caps.Format)
	}
	planes := f.Planes()
	if len(planes) < 2 {
		return NV12{}, fmt.Errorf("snapshot: frame %d has %d planes; NV12 has 2", f.Seq(), len(planes))
	}
	y, err := f.Plane(0)
	if err != nil {
		return NV12{}, fmt.Errorf("snapshot: frame %d: %w", f.Seq(), err)
	}
	uv, err := f.Plane(1)
	if err != nil {
		return NV12{}, fmt.Errorf("snapshot: frame %d: %w", f.Seq(), err)
	}
	p := NV12{Width: caps.Width, Height: caps.Height, Y: y, YStride: planes[0].Stride, UV: uv, UVStride: planes[1].Stride}
	return p, p.Validate()
}

// wait waits for d or until ctx is done; it reports whether d passed.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
