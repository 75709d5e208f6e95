package web

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/internal/keypace"
	"github.com/framehub/framehub/sdk"
)

// Lease terms of the H.264 subscription: each access unit is copied out
// of the shared slab and released at once, so nothing a viewer does can
// hold a lease.
const (
	leaseBudget = 4
	leaseHold   = 2 * time.Second
)

// accessUnit is one H.264 access unit copied out of the producer's slab.
// It is shared, read-only, by every viewer.
type accessUnit struct {
	annexB  []byte   // the access unit as the producer sent it (Annex B, SPS/PPS before an IDR)
	nalus   [][]byte // its NAL units, slices of annexB
	key     bool
	pts     time.Duration // on the camera's timeline (see camera.consume); restarts after a gap
	dur     time.Duration
	capture int64     // CLOCK_MONOTONIC ns
	real    time.Time // CLOCK_REALTIME capture time
	gap     bool      // the first access unit after a gap (a reconnect): timelines restart
}

// viewer is one live viewer of a camera (a WebRTC session or the HLS
// muxer): a bounded queue that the camera fills without ever waiting.
// When the queue is full the viewer loses the access unit and everything
// after it until the next keyframe (for which the camera asks the
// producer): a slow viewer costs only itself.
type viewer struct {
	kind string
	ch   chan *accessUnit

	waitKey bool // under camera.mu: drop until a keyframe
	dropped atomic.Uint64
}

// C returns the viewer's queue.
func (v *viewer) C() <-chan *accessUnit { return v.ch }

// camera is one camera's live side: the subscription to its producer's
// H.264 stream and the fan-out to its viewers.
type camera struct {
	cfg Camera
	o   *Config
	log *slog.Logger
	hls *hlsStream
	adm *producerAdmin // nil without Camera.Admin

	keys      *keypace.Pacer // keyframe requests for joining and resynchronising viewers
	snapshots chan struct{}  // snapshot.jpg requests in progress, a semaphore

	mu        sync.Mutex
	client    *sdk.Client // the current subscription; nil between dials
	viewers   map[*viewer]struct{}
	arrivals  [32]time.Time // receipt times of the last access units, a ring
	nArrivals int
	width     int
	height    int

	received, dials, viewerDrops atomic.Uint64
}

func newCamera(cfg Camera, o *Config) *camera {
	c := &camera{cfg: cfg, o: o, log: o.Logger.With("camera", cfg.Name),
		snapshots: make(chan struct{}, maxSnapshotsInFlight), viewers: map[*viewer]struct{}{}}
	c.keys = keypace.New(o.KeyframeInterval, c.waitingForKey, c.currentClient, c.log)
	c.hls = newHLSStream(c, o)
	if cfg.Admin != "" {
		c.adm = newProducerAdmin(cfg.Admin, o.AdminTokenFile)
	}
	return c
}

// addViewer adds a viewer whose queue holds n access units; it starts at
// the next keyframe, which it asks the producer for. The caller must
// removeViewer it.
func (c *camera) addViewer(kind string, n int) *viewer {
	v := &viewer{kind: kind, ch: make(chan *accessUnit, n), waitKey: true}
	c.mu.Lock()
	c.viewers[v] = struct{}{}
	c.mu.Unlock()
	c.keys.Request()
	return v
}

// removeViewer stops feeding v.
func (c *camera) removeViewer(v *viewer) {
	c.mu.Lock()
	delete(c.viewers, v)
	c.mu.Unlock()
}

// publish hands au to every viewer without waiting for any.
func (c *camera) publish(au *accessUnit) {
	needKey := false
	c.mu.Lock()
	c.arrivals[c.nArrivals%len(c.arrivals)] = time.Now()
	c.nArrivals++
	for v := range c.viewers {
		if v.waitKey {
			if !au.key {
				continue
			}
			v.waitKey = false
		}
		select {
		case v.ch <- au:
		default:
			v.waitKey = true
			v.dropped.Add(1)
			c.viewerDrops.Add(1)
			needKey = true
		}
	}
	c.mu.Unlock()
	if needKey {
		c.keys.Request()
	}
}

// waitingForKey reports whether a viewer waits for a keyframe.
func (c *camera) waitingForKey() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for v := range c.viewers {
		if v.waitKey {
			return true
		}
	}
	return false
}

// CameraStatus is what the page shows of a camera.
type CameraStatus struct {
	Name      string          `json:"name"`
	Connected bool            `json:"connected"` // subscribed to the producer
	FPS       float64         `json:"fps"`       // access units per second received lately
	Width     int             `json:"width,omitempty"`
	Height    int             `json:"height,omitempty"`
	Viewers   map[string]int  `json:"viewers"` // live viewers by kind: WebRTC sessions, and 1 "hls" while the HLS muxer runs
	Received  uint64          `json:"received"`
	Dropped   uint64          `json:"viewer_drops"` // access units viewers lost for being slow
	Recording *RecordingState `json:"recording,omitempty"`
	// Consumers are the producer's consumers (Camera.Admin set), or why
	// they could not be read.
	Consumers      []ConsumerJSON `json:"consumers,omitempty"`
	ConsumersError string         `json:"consumers_error,omitempty"`
}

// RecordingState is what the camera's recordings directory says.
type RecordingState struct {
	Active bool       `json:"active"`         // a segment is being written and grew in the last 5 s
	Last   *time.Time `json:"last,omitempty"` // the end of the newest video recorded in the last 2 minutes
}

// status returns the live part of the camera's status.
func (c *camera) status() CameraStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := CameraStatus{Name: c.cfg.Name, Connected: c.client != nil, Width: c.width, Height: c.height,
		Viewers: map[string]int{}, Received: c.received.Load(), Dropped: c.viewerDrops.Load()}
	for v := range c.viewers {
		st.Viewers[v.kind]++
	}
	n := min(c.nArrivals, len(c.arrivals))
	if n >= 2 {
		last := c.arrivals[(c.nArrivals-1)%len(c.arrivals)]
		first := c.arrivals[(c.nArrivals-n)%len(c.arrivals)]
		if span := last.Sub(first); span > 0 && time.Since(last) < 2*time.Second {
			st.FPS = float64(n-1) / span.Seconds()
		}
	}
	return st
}

// currentClient is the current subscription; nil between dials.
func (c *camera) currentClient() *sdk.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client
}

// run receives access units until ctx is done, resubscribing when the
// producer goes away. It returns nil when ctx is done.
func (c *camera) run(ctx context.Context) error {
	sdk.Persist(ctx, c.log, c.o.ReconnectMax, c.dial, func(ctx context.Context, cl *sdk.Client) error {
		defer func() {
			c.mu.Lock()
			c.client = nil
			c.mu.Unlock()
		}()
		return c.consume(ctx, cl)
	}, "socket", c.cfg.Socket, "stream", c.cfg.Stream)
	return nil
}

func (c *camera) dial(ctx context.Context) (*sdk.Client, error) {
	c.dials.Add(1)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := sdk.Dial(dctx, c.cfg.Socket, sdk.Options{
		Stream: c.cfg.Stream, Name: "framehub-web/" + c.cfg.Name, MaxInFlight: leaseBudget, MaxHold: leaseHold,
		StartAtKeyframe: true, Reconnect: true, ReconnectMax: c.o.ReconnectMax, Logger: c.log,
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to stream %q at %s: %w", c.cfg.Stream, c.cfg.Socket, err)
	}
	caps := cl.Caps()
	c.log.Info("subscribed to the producer", "socket", c.cfg.Socket, "stream", c.cfg.Stream, "codec", caps.Codec,
		"width", caps.Width, "height", caps.Height)
	c.mu.Lock()
	c.client, c.width, c.height = cl, caps.Width, caps.Height
	c.mu.Unlock()
	return cl, nil
}

// consume copies every access unit out, releases it at once and publishes
// it. The SDK starts at a keyframe and skips to the next one after every
// discontinuity (StartAtKeyframe); a discontinuity restarts the camera's
// timeline, which the HLS muxer follows.
func (c *camera) consume(ctx context.Context, cl *sdk.Client) error {
	var base, prev int64 = -1, -1
	gap := true
	return cl.Consume(ctx, func(f *sdk.Frame) error {
		c.received.Add(1)
		if f.Discont() {
			gap = true
		}
		data, err := f.Data()
		if err != nil {
			f.Release()
			c.log.Warn("access unit skipped", "seq", f.Seq(), "err", err)
			gap = true
			return nil
		}
		au := &accessUnit{annexB: append([]byte(nil), data...), key: f.Keyframe(), capture: f.Capture(), real: captureReal(f)}
		pts, dur := f.PTS(), f.Duration()
		f.Release()
		if gap && !au.key {
			return nil // the SDK's StartAtKeyframe sees to it; a bad access unit above may not
		}
		au.nalus = splitAnnexB(au.annexB)
		if pts < 0 {
			pts = time.Now().UnixNano()
		}
		if gap || base < 0 || pts < prev {
			base, au.gap, gap = pts, true, false
		}
		if dur <= 0 {
			dur = int64(time.Second / 30)
			if prev >= 0 && pts > prev && !au.gap {
				dur = pts - prev
			}
		}
		prev = pts
		au.pts, au.dur = time.Duration(pts-base), time.Duration(dur)
		c.publish(au)
		return nil
	})
}

// splitAnnexB returns the NAL units of an Annex B access unit.
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				for end > start && b[end-1] == 0 {
					end-- // the leading zero of a 4-byte start code, or trailing zeros
				}
				if end > start {
					out = append(out, b[start:end])
				}
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	} else if start < 0 && len(b) > 0 {
		out = append(out, b) // no start code: one NAL unit
	}
	return out
}

// captureReal returns the CLOCK_REALTIME capture time of f. The producer's
// media pipeline knows a frame's capture time on CLOCK_MONOTONIC (its
// running time), while the realtime stamp of an encoded frame is when it
// was published, after the encoder; CLOCK_MONOTONIC is shared by every
// process of the machine, so the capture time is now minus the frame's
// age.
func captureReal(f *sdk.Frame) time.Time {
	if f.Capture() <= 0 {
		return f.Realtime()
	}
	return time.Unix(0, clock.Real()-clock.Mono()+f.Capture())
}
