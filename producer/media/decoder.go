package media

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	fhgst "github.com/framehub/framehub/internal/gst"
)

// Raw frames on demand. An rtsp:// source's pixels exist only as H.264, so
// the raw stream needs a decoder, which costs far more CPU than the rest
// of the source together (a 1080p30 software decode is a third of a core
// or more). It runs only while at least one raw consumer is subscribed:
// the raw stream's OnConsumers wakes runDecoder, which starts a decoding
// pipeline when the first raw consumer subscribes (and the camera
// streams), and stops it (state NULL: the decoder's threads end) when the
// last one leaves.
//
//	appsrc fh_decsrc ! h264parse ! decoder ! videoconvert ! videoscale ! NV12 caps ! appsink fh_raw
//
// The decoding pipeline is an ordinary run of the Pipeline (runOnce, with
// start and stop): its raw appsink answers the ALLOCATION query with
// framehub's memfd pool, so a decoder that accepts a downstream pool
// (avdec_h264 does) writes its pictures straight into shareable memory;
// one that does not is copied once per frame, counted in
// copied_frames_total.
//
// A decoder can only start at a keyframe, and the camera cannot be asked
// for one. So the camera side keeps the access units since the last IDR
// (gopCache), and a starting decoder is fed that GOP first: it decodes
// them at once, the pictures before the newest one are dropped (they are
// the past), and the first raw frame is the camera's current picture,
// a GOP's worth of decoding after the subscription instead of up to a
// GOP's duration.

// Limits of the GOP cache: a camera with a longer GOP (or a larger one)
// starts its decoder at the next IDR instead.
const (
	gopMaxAUs   = 600      // 20 s at 30 fps
	gopMaxBytes = 32 << 20 // 20 s at 12 Mbit/s
)

// decQueueMax is how many access units may wait for the decoder (the
// appsrc's queue) before it is taken to have fallen behind: the access
// units are then dropped up to the next keyframe (Stats.DecoderSkipped),
// where decoding resumes cleanly. It leaves room for a whole cached GOP.
const decQueueMax = gopMaxAUs + 120

// elemDecSrc is the appsrc the camera's access units are pushed into.
const elemDecSrc = "fh_decsrc"

// chooseDecoder resolves Config.Decoder to an installed element ("" for
// none) and checks the rest of the decoding pipeline.
func chooseDecoder(want string) (string, error) {
	if want == DecoderNone {
		return "", nil
	}
	name := want
	if want == "" {
		for _, e := range autoDecoders {
			if elementExists(e) {
				name = e
				break
			}
		}
		if name == "" {
			return "", fmt.Errorf("media: no H.264 decoder installed (tried %s) for the raw stream of the rtsp:// source: %w; or set Decoder to %q (no raw stream)",
				strings.Join(autoDecoders, ", "), missingElement("avdec_h264", "software H.264 decoder"), DecoderNone)
		}
	} else if !elementExists(name) {
		return "", missingElement(name, "H.264 decoder")
	}
	needs := []string{"appsrc", "h264parse", "appsink", "capsfilter"}
	if strings.HasPrefix(name, "nv") {
		needs = append(needs, "nvvidconv")
	} else {
		needs = append(needs, "videoconvert", "videoscale")
	}
	for _, e := range needs {
		if !elementExists(e) {
			return "", missingElement(e, "raw stream of the rtsp:// source")
		}
	}
	return name, nil
}

// decoderDescription is the raw branch of an rtsp:// source: the access
// units pushed into an appsrc, decoded, and converted to the raw caps.
func decoderDescription(decoder string) string {
	d := fmt.Sprintf("appsrc name=%s is-live=true format=time do-timestamp=false block=false max-buffers=0 max-bytes=0 max-time=0"+
		` caps="video/x-h264,stream-format=byte-stream,alignment=au" ! h264parse ! %s name=fh_dec ! `, elemDecSrc, decoder)
	if strings.HasPrefix(decoder, "nv") {
		return d + "nvvidconv ! " // NVMM to system memory (or adopted NVMM: see description)
	}
	return d + "videoconvert ! videoscale ! "
}

// gopCache holds copies of the access units since the camera's last IDR.
// It is guarded by Pipeline.decMu.
type gopCache struct {
	buf  []byte
	aus  []cachedAU
	over bool // the GOP outgrew the limits: unusable until the next IDR
}

type cachedAU struct {
	off, n         int
	pts, dts, mono int64
	key            bool
}

// add appends an access unit; a keyframe starts the cache over.
func (g *gopCache) add(au []byte, pts, dts, mono int64, key bool) {
	if key {
		g.reset()
	} else if g.over || len(g.aus) == 0 {
		return // no IDR to start from
	}
	if len(g.aus) >= gopMaxAUs || len(g.buf)+len(au) > gopMaxBytes {
		g.reset()
		g.over = true
		return
	}
	g.aus = append(g.aus, cachedAU{off: len(g.buf), n: len(au), pts: pts, dts: dts, mono: mono, key: key})
	g.buf = append(g.buf, au...)
}

func (g *gopCache) reset() {
	g.buf, g.aus, g.over = g.buf[:0], g.aus[:0], false
}

// feedTimes is how many pushed access units decFeed remembers the capture
// times of: far more than a decoder holds back (its reorder and threading
// delay).
const feedTimes = 64

// decFeed is the input of one running decoder: the appsrc, and the capture
// times of what went in, for the raw frames that come out.
type decFeed struct {
	src      *fhgst.Element
	skipping bool // (decMu) waiting for a keyframe: the decoder fell behind, or started without a cached GOP

	mu         sync.Mutex
	times      [feedTimes]struct{ pts, mono int64 }
	n          int
	primeUntil int64 // raw frames before this PTS only primed the decoder from the GOP cache
}

// push queues one access unit for the decoder; the caller holds decMu.
func (f *decFeed) push(p *Pipeline, au []byte, pts, dts, mono int64, key bool) {
	if f.skipping && !key {
		return
	}
	if f.src.QueuedBuffers() >= decQueueMax {
		if !f.skipping {
			p.log.Warn("the raw stream's decoder fell behind: skipping to the camera's next keyframe", "queued", decQueueMax, "decoder", p.decoder)
		}
		f.skipping = true
		p.ctr.decSkipped.Add(1)
		return
	}
	f.skipping = false
	f.mu.Lock()
	f.times[f.n%feedTimes] = struct{ pts, mono int64 }{pts, mono}
	f.n++
	f.mu.Unlock()
	// A flushing appsrc (the run is stopping) refuses: nothing to do.
	_ = f.src.PushBytes(au, pts, dts, -1, !key)
}

// frame says whether the raw frame of presentation time pts is published,
// and its capture time (0, "now", when unknown).
func (f *decFeed) frame(pts int64) (mono int64, publish bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pts >= 0 && pts < f.primeUntil {
		return 0, false
	}
	for i := range f.times {
		if f.times[i].pts == pts && f.times[i].mono != 0 {
			return f.times[i].mono, true
		}
	}
	return 0, true
}

// decoderInput takes each access unit the camera publishes: into the GOP
// cache, and to the running decoder.
func (p *Pipeline) decoderInput(au []byte, pts, dts, mono int64, key bool) {
	if p.raw == nil {
		return
	}
	p.decMu.Lock()
	defer p.decMu.Unlock()
	p.gop.add(au, pts, dts, mono, key)
	if p.feed != nil {
		p.feed.push(p, au, pts, dts, mono, key)
	}
}

// attachFeed makes src (the appsrc of a decoding run that just started)
// the decoder's input, primed with the GOP cache.
func (p *Pipeline) attachFeed(src *fhgst.Element) *decFeed {
	f := &decFeed{src: src, primeUntil: -1}
	p.decMu.Lock()
	defer p.decMu.Unlock()
	if g := &p.gop; len(g.aus) > 0 && !g.over {
		for _, a := range g.aus {
			f.push(p, g.buf[a.off:a.off+a.n], a.pts, a.dts, a.mono, a.key)
		}
		f.primeUntil = g.aus[len(g.aus)-1].pts
	} else {
		f.skipping = true
	}
	p.feed = f
	return f
}

// detachFeed stops feeding f (its run is stopping).
func (p *Pipeline) detachFeed(f *decFeed) {
	p.decMu.Lock()
	defer p.decMu.Unlock()
	if p.feed == f {
		p.feed = nil
	}
}

// cameraDown is called when a camera session that published ended: its
// GOP cannot start the next session's decoder.
func (p *Pipeline) cameraDown() {
	p.decMu.Lock()
	p.gop.reset()
	p.decMu.Unlock()
	p.wakeDecoder()
}

// wakeDecoder makes runDecoder look again at the raw consumers and the
// camera. It never blocks.
func (p *Pipeline) wakeDecoder() {
	select {
	case p.decWake <- struct{}{}:
	default:
	}
}

// runDecoder runs the raw stream's decoder while raw consumers are
// subscribed and the camera streams, until ctx is done. A decoder that
// fails is started again after a backoff (RetryMin..RetryMax), as long as
// it is wanted.
func (p *Pipeline) runDecoder(ctx context.Context) {
	type decRun struct {
		cancel  context.CancelFunc
		done    chan error
		started time.Time
	}
	var cur *decRun
	stopCur := func() {
		cur.cancel()
		<-cur.done
		cur = nil
		p.decRunning.Store(false)
	}
	backoff := p.cfg.RetryMin
	var retryAt time.Time
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		want := p.raw.Consumers() > 0 && p.cam.up.Load()
		switch {
		case want && cur == nil && !time.Now().Before(retryAt):
			dctx, cancel := context.WithCancel(ctx)
			cur = &decRun{cancel: cancel, done: make(chan error, 1), started: time.Now()}
			done := cur.done
			p.decRunning.Store(true)
			p.ctr.decStarts.Add(1)
			p.log.Info("raw consumer subscribed: decoding the camera", "decoder", p.decoder, "starts", p.ctr.decStarts.Load())
			go func() {
				_, err := p.runOnce(dctx)
				done <- err
			}()
		case !want && cur != nil:
			stopCur()
			p.log.Info("decoder stopped", "why", map[bool]string{true: "no raw consumer left", false: "the camera is gone"}[p.cam.up.Load()])
		}
		var done chan error
		if cur != nil {
			done = cur.done
		}
		select {
		case <-ctx.Done():
			if cur != nil {
				stopCur()
			}
			return
		case <-p.decWake:
		case <-retry.C:
		case err := <-done:
			// runOnce failed (it logged why and sent EOS on raw).
			cur.cancel()
			if time.Since(cur.started) >= p.cfg.RetryMax {
				backoff = p.cfg.RetryMin // it ran well for a while: a new failure starts over
			}
			cur = nil
			p.decRunning.Store(false)
			if err == nil {
				continue // its ctx ended: ours is done
			}
			retryAt = time.Now().Add(backoff)
			retry.Reset(backoff)
			p.log.Warn("decoder failed, restarting while raw consumers want it", "err", err, "in", backoff)
			backoff = min(2*backoff, p.cfg.RetryMax)
		}
	}
}
