package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/sdk"
)

// stopKeyframeWait bounds how long a stopping recorder waits for the
// keyframe it asked for, to end its segment on a GOP boundary.
const stopKeyframeWait = 2 * time.Second

// budget is the lease budget asked of the producer. Access units are
// released as soon as they are copied, so it only paces replay: the
// producer sends up to this many buffered frames per release round trip.
const budget = 32

// Recorder records a producer's H.264 stream into segment files. Create it
// with New, then Run it; Handler serves its admin API.
type Recorder struct {
	cfg    Config
	log    *slog.Logger
	q      *queue
	m      *metrics
	st     *status
	health *admin.HealthClock
	boot   [16]byte

	dropLog atomic.Int64 // when a full queue was last logged (mono)

	mu     sync.Mutex // guards client, ring and ev (receiver and admin API)
	client *sdk.Client
	ring   []*au // event mode: the pre-event buffer, starting at a keyframe
	ringB  int64
	ev     eventState
}

// New validates cfg (filling in its defaults) and returns a recorder.
func New(cfg Config) (*Recorder, error) {
	cfg.fill()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	q := newQueue(cfg.QueueBytes)
	return &Recorder{
		cfg: cfg, log: cfg.Logger.With("component", "recorder"), q: q, m: newMetrics(q), st: &status{}, health: admin.NewHealthClock(), boot: bootID(),
	}, nil
}

// Registry returns the recorder's Prometheus registry.
func (r *Recorder) Registry() *prometheus.Registry { return r.m.reg }

// receiveState is the receiver's view of the stream.
type receiveState struct {
	lastSeq  uint64 // of the last access unit received; 0 = none
	lastMono int64  // its capture time: later ones are new, earlier ones duplicates
	needKey  bool   // after a gap: drop until a keyframe
	keyAsked bool   // a keyframe was requested while needKey
	pushed   bool   // something was handed to the writer (continuous mode)
	gapLog   time.Time
	// lastRefetch is when frames the producer skipped for us were last
	// fetched again from its replay buffer, and refetchMono lastMono then
	// (see onFrame).
	lastRefetch time.Time
	refetchMono int64
}

// errRefetch ends a connection so that the next one replays what the
// producer skipped for this recorder.
var errRefetch = errors.New("the producer skipped frames for the recorder: resubscribing to replay them")

// refetchEvery bounds how often skipped frames are fetched again when the
// last refetch made no progress: a recorder that cannot keep up even so
// records gaps instead of reconnecting in a loop. A refetch after progress
// (the recorder was stopped twice, a few seconds apart) is not limited.
const refetchEvery = 5 * time.Second

// Run repairs what a crash left in Dir, then records until ctx is done. It
// must be called once. On
// the way out it waits (up to 2 s) for a keyframe to end the segment on a
// GOP boundary, writes everything queued and finalises the segment. It
// returns nil after ctx is done, or the error that stopped it (Dir not
// usable, the producer refused the subscription for good).
func (r *Recorder) Run(ctx context.Context) error {
	rec, err := recoverDir(r.cfg.FS, r.cfg.Dir, r.boot, r.cfg.Mode == ModeContinuous, r.log, r.m)
	if err != nil {
		return err
	}
	w := &writer{
		cfg: &r.cfg, log: r.log, q: r.q, m: r.m, st: r.st, bootID: r.boot, keyframe: r.requestKeyframe, resume: rec.part,
		ret: &retention{fs: r.cfg.FS, root: r.cfg.Dir, keepBytes: r.cfg.KeepBytes, keepAge: r.cfg.KeepAge, log: r.log, m: r.m},
	}
	for _, f := range rec.closed {
		w.ret.idx.add(f)
	}
	var wg sync.WaitGroup
	wg.Go(w.run)
	err = r.receive(ctx, rec)
	r.q.close()
	wg.Wait()
	return err
}

// receive dials the producer and hands access units to the writer until
// ctx is done, redialling (with backoff) when the connection ends.
func (r *Recorder) receive(ctx context.Context, rec recovery) error {
	var s receiveState
	s.needKey = true
	replayFrom := int64(0) // a fresh recording starts live
	if rp := rec.resume; rp.found {
		if rp.sameBoot {
			replayFrom, s.lastMono = rp.mono, rp.mono
			if rec.part != nil {
				// The interrupted segment may go on: its next frame need not
				// be a keyframe (writer.resolveResume decides).
				s.lastSeq, s.needKey = rp.seq, false
			}
		} else {
			replayFrom = 1 // another boot: everything the producer kept is new
		}
		r.log.Info("resuming after the last durable frame", "capture_mono", rp.mono, "seq", rp.seq, "same_boot", rp.sameBoot)
	}
	for first := true; ; first = false {
		if r.cfg.Mode == ModeEvent {
			// Refill the pre-event buffer from the producer's replay buffer.
			replayFrom = max(s.lastMono, clock.Mono()-int64(r.cfg.Pre))
		} else if !first && s.lastMono > 0 {
			replayFrom = s.lastMono // what the producer kept of what we missed
		}
		c, err := r.dial(ctx, replayFrom)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if !first {
			r.m.reconnects.Inc()
		}
		r.setClient(c)
		err = r.consume(ctx, c, &s)
		r.setClient(nil)
		_ = c.Close()
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, errRefetch) {
			r.log.Warn("connection to the producer lost: reconnecting", "err", err, "replay_from_mono", s.lastMono)
		}
	}
}

// dial subscribes to the stream, retrying with exponential backoff while
// the producer is away.
func (r *Recorder) dial(ctx context.Context, replayFrom int64) (*sdk.Client, error) {
	wait := r.cfg.ReconnectMin
	for attempt := 1; ; attempt++ {
		c, err := sdk.Dial(ctx, r.cfg.Producer, sdk.Options{
			Stream: r.cfg.Stream, Name: r.cfg.Name, MaxInFlight: budget, MaxHold: r.cfg.MaxHold,
			ReplayFrom: replayFrom, Logger: r.cfg.Logger,
		})
		if err == nil {
			r.st.setDialErr("")
			r.log.Info("subscribed to the producer", "producer", r.cfg.Producer, "stream", r.cfg.Stream, "replay_from_mono", replayFrom)
			return c, nil
		}
		r.st.setDialErr(err.Error())
		var rej *sdk.RejectError
		if errors.As(err, &rej) {
			switch rej.Code {
			case sdk.CodeVersion, sdk.CodeDenied, sdk.CodeInvalidArgument, sdk.CodeLossless:
				return nil, fmt.Errorf("recorder: subscribe to %q at %s: %w", r.cfg.Stream, r.cfg.Producer, err)
			}
		}
		level := slog.LevelDebug
		if attempt == 1 || wait == r.cfg.ReconnectMax {
			level = slog.LevelWarn
		}
		r.log.Log(ctx, level, "cannot subscribe to the producer, retrying", "producer", r.cfg.Producer, "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, r.cfg.ReconnectMax)
	}
}

func (r *Recorder) setClient(c *sdk.Client) {
	r.mu.Lock()
	r.client = c
	r.mu.Unlock()
	r.st.connected.Store(c != nil)
}

// requestKeyframe asks the producer for a keyframe, if connected. The
// producer rate-limits these.
func (r *Recorder) requestKeyframe() {
	r.mu.Lock()
	c := r.client
	r.mu.Unlock()
	if c != nil {
		_ = c.RequestKeyframe()
	}
}

// consume receives until the connection ends or ctx is done.
func (r *Recorder) consume(ctx context.Context, c *sdk.Client, s *receiveState) error {
	for {
		f, err := c.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				r.finishAtKeyframe(c, s)
			}
			return err
		}
		if err := r.onFrame(f, s); err != nil {
			return err
		}
	}
}

// finishAtKeyframe ends the recording on a GOP boundary when stopping: it
// asks for a keyframe and records every access unit before it. A restart
// then resumes with that keyframe, in a new segment, losing nothing.
func (r *Recorder) finishAtKeyframe(c *sdk.Client, s *receiveState) {
	if !s.pushed && !r.eventActive() {
		return
	}
	_ = c.RequestKeyframe()
	ctx, cancel := context.WithTimeout(context.Background(), stopKeyframeWait)
	defer cancel()
	for {
		f, err := c.Next(ctx)
		if err != nil {
			r.log.Warn("no keyframe to stop at: the next start resumes at the next keyframe", "err", err)
			return
		}
		if f.Keyframe() {
			f.Release()
			return
		}
		_ = r.onFrame(f, s) // stopping: what was skipped stays skipped
	}
}

// onFrame copies an access unit, releases its lease at once, and hands the
// copy on: never anything that can wait here (storage, locks held long).
//
// When the producer skipped frames for this recorder (it was stopped or
// starved past its budget, not evicted) those frames are still in the
// producer's replay buffer: onFrame returns errRefetch instead of recording
// a gap, and the receive loop resubscribes from the last frame it has.
func (r *Recorder) onFrame(f *sdk.Frame, s *receiveState) error {
	arrived := clock.Mono()
	r.st.lastFrame.Store(arrived)
	r.st.firstFrame.CompareAndSwap(0, arrived)
	if f.Replay() {
		r.m.replayed.Inc()
	}
	a := &au{seq: f.Seq(), pts: f.PTS(), dts: f.DTS(), dur: f.Duration(), mono: f.Capture(), real: f.Realtime().UnixNano(), key: f.Keyframe(), arrived: arrived}
	discont, dropped := f.Discont(), f.Dropped()
	data, err := f.Data()
	if err == nil {
		a.sample, a.sps, a.pps, err = toAVCC(data)
	}
	f.Release()
	if a.dts < 0 {
		a.dts = a.pts
	}
	if a.dts < 0 {
		a.pts, a.dts = a.mono, a.mono
	}
	if s.lastMono > 0 && a.mono <= s.lastMono {
		r.m.droppedFrames.WithLabelValues("duplicate").Inc()
		return nil
	}
	if dropped > 0 && s.lastMono > 0 && r.cfg.Mode == ModeContinuous &&
		(s.lastMono != s.refetchMono || time.Since(s.lastRefetch) >= refetchEvery) {
		s.lastRefetch, s.refetchMono = time.Now(), s.lastMono
		r.m.refetches.Inc()
		r.log.Info("the producer skipped frames for the recorder: fetching them from its replay buffer",
			"skipped", dropped, "after_seq", s.lastSeq, "replay_from_mono", s.lastMono)
		return errRefetch
	}
	// Before the first frame of a fresh recording (no earlier frame, no
	// resume point) nothing is missing, whatever the producer says: its
	// replay buffer need not reach back to the start of its stream.
	first := s.lastSeq == 0 && s.lastMono == 0
	if gap := (!first && (discont || (s.lastSeq != 0 && a.seq != s.lastSeq+1))) || err != nil; gap {
		r.m.gaps.Inc()
		s.needKey, s.keyAsked = true, true
		r.requestKeyframe()
		if now := time.Now(); now.Sub(s.gapLog) >= time.Second {
			s.gapLog = now
			if s.lastSeq == 0 && err == nil {
				// Resuming: the frames since the last recorded one are
				// gone from the producer's replay buffer.
				r.log.Warn("gap after the last recorded frame: the producer no longer holds every frame captured since "+
					"(the recorder was away longer than the producer's -h264-replay, or the producer restarted); "+
					"recording resumes at the next keyframe", "seq", a.seq, "last_recorded_mono", s.lastMono)
			} else {
				r.log.Warn("gap in the stream: recording resumes at the next keyframe", "seq", a.seq, "after_seq", s.lastSeq,
					"skipped_by_producer", dropped, "err", err)
			}
		}
	}
	s.lastSeq, s.lastMono = a.seq, a.mono
	if err != nil {
		return nil
	}
	if s.needKey {
		if !a.key {
			if !s.keyAsked {
				// At start (and after a reconnect) do not wait up to a GOP.
				s.keyAsked = true
				r.requestKeyframe()
			}
			r.m.droppedFrames.WithLabelValues("wait_keyframe").Inc()
			return nil
		}
		s.needKey, s.keyAsked = false, false
	}
	if r.cfg.Mode == ModeEvent {
		r.route(a)
		return nil
	}
	r.push(a)
	s.pushed = true
	return nil
}

// push queues an access unit for the writer, counting what a full queue
// drops. It is called by the receiver, and by an event's trigger under mu.
func (r *Recorder) push(a *au) {
	queued, gopLost := r.q.push(a)
	if queued {
		return
	}
	r.m.droppedFrames.WithLabelValues("queue_full").Inc()
	if !gopLost {
		return
	}
	r.m.droppedGOPs.WithLabelValues("queue_full").Inc()
	if now, last := clock.Mono(), r.dropLog.Load(); now-last >= int64(time.Second) && r.dropLog.CompareAndSwap(last, now) {
		b, n, _ := r.q.depth()
		r.log.Warn("write queue full (storage slower than the camera): dropping a GOP", "queue_bytes", b, "queue_frames", n)
	}
}
