package web

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
)

// LL-HLS: one gohlslib muxer per camera (fMP4 segments of at least 1 s,
// parts of 200 ms, blocking playlist reloads), fed from a viewer queue like
// a WebRTC session, so a muxer that falls behind costs only itself. It
// runs only while someone plays: the first request starts it, and it stops
// after hlsIdle without requests.

const (
	hlsIdle         = 30 * time.Second
	hlsStartTimeout = 10 * time.Second // a request's wait for the muxer's first keyframe
)

// hlsStream is a camera's LL-HLS side.
type hlsStream struct {
	c    *camera
	o    *Config
	want chan struct{} // capacity 1: a request came

	mu      sync.Mutex
	muxer   *gohlslib.Muxer // nil while not running or before the first keyframe
	started chan struct{}   // closed when muxer is set; replaced when it stops
	lastReq time.Time
}

func newHLSStream(c *camera, o *Config) *hlsStream {
	return &hlsStream{c: c, o: o, want: make(chan struct{}, 1), started: make(chan struct{})}
}

// serve answers a request for the playlists, the init file, segments and
// parts: it starts the muxer when it is not running and waits (at most
// hlsStartTimeout) for its first keyframe.
func (h *hlsStream) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.lastReq = time.Now()
	m, started := h.muxer, h.started
	h.mu.Unlock()
	if m == nil {
		select {
		case h.want <- struct{}{}:
		default:
		}
		t := time.NewTimer(hlsStartTimeout)
		defer t.Stop()
		select {
		case <-started:
		case <-r.Context().Done():
			return
		case <-t.C:
			writeError(w, httpError{http.StatusServiceUnavailable, fmt.Sprintf("camera %q: no keyframe within %v (is its producer up?)",
				h.c.cfg.Name, hlsStartTimeout)})
			return
		}
		h.mu.Lock()
		m = h.muxer
		h.mu.Unlock()
		if m == nil {
			writeError(w, httpError{http.StatusServiceUnavailable, fmt.Sprintf("camera %q: the HLS stream stopped", h.c.cfg.Name)})
			return
		}
	}
	w.Header().Set("Cache-Control", "no-cache")
	m.Handle(w, r)
}

// run starts the muxer whenever a request wants it, until ctx is done.
func (h *hlsStream) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.want:
		}
		if err := h.stream(ctx); err != nil {
			h.c.log.Warn("HLS stream stopped", "err", err)
		}
	}
}

// stream muxes the camera's access units until ctx is done or nobody asked
// for anything for hlsIdle.
func (h *hlsStream) stream(ctx context.Context) error {
	v := h.c.addViewer("hls", h.o.ViewerQueue)
	defer h.c.removeViewer(v)
	var m *gohlslib.Muxer
	var track *gohlslib.Track
	defer func() {
		h.mu.Lock()
		h.muxer = nil
		select {
		case <-h.started:
			h.started = make(chan struct{}) // the next run's
		default:
		}
		h.mu.Unlock()
		if m != nil {
			m.Close()
		}
	}()
	h.c.log.Info("HLS stream starting")
	idle := time.NewTicker(time.Second)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-idle.C:
			h.mu.Lock()
			last := h.lastReq
			h.mu.Unlock()
			if time.Since(last) > hlsIdle {
				h.c.log.Info("HLS stream stopping: no requests", "for", hlsIdle)
				return nil
			}
		case au := <-v.C():
			if m == nil || au.gap {
				// The first keyframe, or a new timeline (the producer
				// restarted): a new muxer, whose playlists players
				// reload from the start.
				if m != nil {
					h.mu.Lock()
					h.muxer = nil
					h.mu.Unlock()
					m.Close()
				}
				var err error
				if m, track, err = newMuxer(au); err != nil {
					return err
				}
				h.mu.Lock()
				h.muxer = m
				select {
				case <-h.started:
				default:
					close(h.started)
				}
				h.mu.Unlock()
			}
			pts := int64(au.pts) * 90000 / int64(time.Second)
			if err := m.WriteH264(track, au.real, pts, au.nalus); err != nil {
				h.c.log.Debug("HLS write", "err", err)
			}
		}
	}
}

// newMuxer starts a low-latency HLS muxer for the stream whose first
// access unit (a keyframe) is au.
func newMuxer(au *accessUnit) (*gohlslib.Muxer, *gohlslib.Track, error) {
	codec := &codecs.H264{}
	for _, n := range au.nalus {
		switch n[0] & 0x1f {
		case 7:
			codec.SPS = n
		case 8:
			codec.PPS = n
		}
	}
	if codec.SPS == nil || codec.PPS == nil {
		return nil, nil, fmt.Errorf("web: HLS: keyframe without SPS and PPS")
	}
	track := &gohlslib.Track{Codec: codec, ClockRate: 90000}
	m := &gohlslib.Muxer{
		Tracks: []*gohlslib.Track{track}, Variant: gohlslib.MuxerVariantLowLatency,
		SegmentCount: 7, SegmentMinDuration: time.Second, PartMinDuration: 200 * time.Millisecond,
	}
	if err := m.Start(); err != nil {
		return nil, nil, fmt.Errorf("web: HLS muxer: %w", err)
	}
	return m, track, nil
}
