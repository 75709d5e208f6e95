package recorder

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/framehub/framehub/internal/clock"
)

// status is what the writer and the receiver publish for /healthz and the
// admin API.
type status struct {
	lastWrite     atomic.Int64 // Unix ns of the last successful fragment write; 0 = none yet
	lastWriteMono atomic.Int64 // the same on CLOCK_MONOTONIC
	firstFrame    atomic.Int64 // receipt time (mono) of the first access unit
	durableMono   atomic.Int64 // capture time of the last access unit made durable
	pendingSince  atomic.Int64 // receipt time (mono) of the oldest access unit the writer holds unwritten; 0 = none
	lastFrame     atomic.Int64 // receipt time (mono) of the last access unit
	connected     atomic.Bool

	mu      sync.Mutex
	segment string // the file being written
	dialErr string // why the last subscription attempt failed; "" once subscribed
}

// setDialErr records why subscribing failed ("" when it succeeded).
func (s *status) setDialErr(msg string) {
	s.mu.Lock()
	s.dialErr = msg
	s.mu.Unlock()
}

func (s *status) lastDialErr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dialErr
}

func (s *status) setSegment(path string) {
	s.mu.Lock()
	s.segment = path
	s.mu.Unlock()
}

func (s *status) currentSegment() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.segment
}

// recoveredPart is a segment left by a crash, repaired, that the writer
// continues if the first access unit it gets follows its last one.
type recoveredPart struct {
	path string
	seg  *Segment
}

// writer is the goroutine that owns the segment files: it takes access
// units from the queue, packs them into fragments, writes and fsyncs each
// fragment, cuts and finalises segments, and runs retention. Only it
// touches storage, so a stalled disk stalls only it.
type writer struct {
	cfg      *Config
	log      *slog.Logger
	q        *queue
	m        *metrics
	st       *status
	bootID   [16]byte
	keyframe func() // asks the producer for a keyframe; safe from any goroutine
	ret      *retention
	resume   *recoveredPart

	cur          *segment
	pending      []*au // the fragment being built
	needKey      bool  // a write failed: drop until a keyframe
	cut          bool  // cmdCut: the next keyframe starts a segment named cutName
	cutName      string
	suffix       string // of the names of the segments of the event being recorded
	lastParamSPS []byte // parameter sets of the last keyframe, for keyframes without in-band ones
	lastParamPPS []byte
}

// run writes until the queue is closed and drained, then finalises the
// current segment.
func (w *writer) run() {
	retTick := time.NewTicker(time.Minute)
	defer retTick.Stop()
	w.ret.run(time.Now(), w.openBytes())
	for {
		it, ok, done := w.q.pop()
		if done {
			break
		}
		if ok {
			w.handle(it)
			continue
		}
		var (
			idle  <-chan time.Time
			timer *time.Timer
		)
		if len(w.pending) > 0 {
			d := time.Duration(w.pending[0].arrived + int64(w.cfg.Fragment) - clock.Mono())
			if d <= 0 {
				w.flush(nil) // nothing came for a fragment's time: write what we have
				continue
			}
			timer = time.NewTimer(d)
			idle = timer.C
		}
		select {
		case <-w.q.wake:
		case <-idle:
			w.flush(nil)
		case now := <-retTick.C:
			w.ret.run(now, w.openBytes())
		}
		if timer != nil {
			timer.Stop()
		}
	}
	w.closeSegment(nil, "recorder stopping")
	if w.resume != nil {
		w.finaliseRecovered()
	}
}

func (w *writer) handle(it item) {
	switch it.cmd {
	case cmdCut:
		w.cut, w.cutName, w.suffix = true, it.name, it.suffix
	case cmdClose:
		w.closeSegment(nil, "event recorded")
		w.cut, w.suffix = false, ""
	default:
		w.writeAU(it.au)
	}
}

// last returns the producer sequence number and DTS of the last access unit
// of the current segment, written or pending.
func (w *writer) last() (seq uint64, dts int64, ok bool) {
	if n := len(w.pending); n > 0 {
		return w.pending[n-1].seq, w.pending[n-1].dts, true
	}
	if w.cur != nil {
		return w.cur.lastSeq, w.cur.lastDTS, true
	}
	return 0, 0, false
}

func (w *writer) writeAU(a *au) {
	if w.resume != nil {
		w.resolveResume(a)
	}
	if a.key && a.sps != nil && a.pps != nil {
		w.lastParamSPS, w.lastParamPPS = a.sps, a.pps
	}
	// A fragment is complete when an access unit comes a fragment's time
	// after its first one. Writing it may fail, which drops the rest of
	// the GOP (needKey).
	if len(w.pending) > 0 && a.dts-w.pending[0].dts >= int64(w.cfg.Fragment)-halfFrame(a) {
		w.flush(a)
	}
	if w.needKey && !a.key {
		w.m.droppedFrames.WithLabelValues("write_error").Inc()
		return
	}
	lastSeq, lastDTS, ok := w.last()
	contiguous := ok && a.seq == lastSeq+1 && a.dts > lastDTS
	switch {
	case w.cut && a.key:
		w.closeSegment(a, "event")
		w.cut = false
		w.openSegment(a, w.cutName)
	case w.cur == nil || !contiguous:
		if !a.key {
			// The receiver passes only keyframes after a gap; this is the
			// tail of a GOP whose start could not be written.
			w.m.droppedFrames.WithLabelValues("wait_keyframe").Inc()
			return
		}
		if w.cur != nil {
			w.flush(nil)
			if a.seq <= lastSeq || a.dts <= lastDTS {
				w.closeSegment(nil, "producer timeline restarted")
			}
			// Otherwise the segment goes on: the next fragment's decode
			// time jumps over the gap.
		}
		if w.cur == nil {
			w.openSegment(a, "")
		}
	case a.key && (w.full(a) || !bytes.Equal(a.sps, w.cur.track.sps) && a.sps != nil || !bytes.Equal(a.pps, w.cur.track.pps) && a.pps != nil):
		w.closeSegment(a, "segment complete")
		w.openSegment(a, "")
	}
	if w.cur == nil {
		return // the segment could not be created: counted and logged
	}
	w.needKey = false
	if !a.key && !w.cur.keyAsked && w.overdue(a) {
		// Ask for the keyframe that ends this segment instead of waiting for
		// the encoder's next one (up to a GOP). Not at once: when the GOP
		// divides the segment, the encoder's own keyframe is due now (late by
		// a frame or two when it dropped input), and asking would make two.
		w.cur.keyAsked = true
		w.keyframe()
	}
	w.pending = append(w.pending, a)
	if len(w.pending) == 1 {
		w.st.pendingSince.Store(a.arrived)
	}
}

// full reports whether the segment has reached its duration at a.
func (w *writer) full(a *au) bool {
	return a.dts-w.cur.info.BaseNS >= int64(w.cfg.Segment)-halfFrame(a)
}

// halfFrame is the tolerance of duration comparisons: timestamps of 30 fps
// are multiples of 33333333 ns, so 15 frames are 5 ns short of 500 ms.
func halfFrame(a *au) int64 { return max(a.dur, int64(time.Millisecond)) / 2 }

// overdue reports whether the keyframe ending the segment is two frames
// late at a.
func (w *writer) overdue(a *au) bool {
	return a.dts-w.cur.info.BaseNS >= int64(w.cfg.Segment)+2*max(a.dur, int64(time.Millisecond))
}

// openSegment starts a segment with keyframe a. name "" names it by a's
// capture time.
func (w *writer) openSegment(a *au, name string) {
	sps, pps := a.sps, a.pps
	if sps == nil || pps == nil {
		sps, pps = w.lastParamSPS, w.lastParamPPS
	}
	if sps == nil || pps == nil || len(sps) < 4 {
		w.log.Warn("keyframe without SPS/PPS: waiting for the next one", "seq", a.seq)
		w.m.droppedFrames.WithLabelValues("wait_keyframe").Inc()
		w.needKey = true
		return
	}
	if name == "" {
		name = segmentName(a.real, w.suffix)
	}
	p := spsInfo(sps)
	track := trackParams{width: p.width, height: p.height, sps: sps, pps: pps}
	info := SegmentInfo{BootID: w.bootID, BaseNS: a.dts, StartMono: a.mono, StartReal: a.real, FirstSeq: a.seq}
	seg, err := createSegment(w.cfg.FS, w.cfg.Dir, name, track, info)
	if err != nil && w.storageError(err, "create segment") {
		seg, err = createSegment(w.cfg.FS, w.cfg.Dir, name, track, info)
	}
	if err != nil {
		w.log.Error("cannot create a segment: dropping until the next keyframe", "err", err)
		w.m.droppedFrames.WithLabelValues("write_error").Inc()
		w.dropGOP(1)
		return
	}
	w.m.bytes.Add(float64(seg.size))
	seg.lastSeq, seg.lastDTS = a.seq-1, a.dts-1
	w.cur = seg
	w.st.setSegment(seg.path)
	w.log.Debug("segment started", "file", seg.path, "seq", a.seq)
}

// flush writes the pending access units as one fragment and fsyncs it.
// next, when given, is the access unit after them: it gives the last one
// its exact duration.
func (w *writer) flush(next *au) {
	if len(w.pending) == 0 || w.cur == nil {
		return
	}
	defer func() {
		w.pending = w.pending[:0]
		w.st.pendingSince.Store(0)
	}()
	base := w.cur.info.BaseNS
	samples := make([]fragSample, len(w.pending))
	data := make([][]byte, len(w.pending))
	for i, p := range w.pending {
		dts := ticks(p.dts - base)
		var dur int64
		switch {
		case i+1 < len(w.pending):
			dur = ticks(w.pending[i+1].dts-base) - dts
		case next != nil && next.seq == p.seq+1:
			dur = ticks(next.dts-base) - dts
		case p.dur > 0:
			dur = ticks(p.dts+p.dur-base) - dts
		case i > 0:
			dur = int64(samples[i-1].dur)
		default:
			dur = ticks(int64(time.Second / 30))
		}
		samples[i] = fragSample{dts: dts, dur: uint32(max(dur, 1)), cto: int32(ticks(p.pts-base) - dts), size: uint32(len(p.sample)), key: p.key}
		data[i] = p.sample
	}
	first, last := w.pending[0], w.pending[len(w.pending)-1]
	info := FragmentInfo{FirstSeq: first.seq, Count: uint32(len(w.pending)), FirstMono: first.mono, LastMono: last.mono, FirstReal: first.real, LastDTS: last.dts}
	b := marshalFragment(w.cur.seq, info, samples, data)
	lastS := samples[len(samples)-1]
	end := lastS.dts + int64(lastS.dur)

	start := time.Now()
	err := w.cur.write(b, end)
	if err != nil && w.storageError(err, "write fragment") {
		if err = w.cur.write(b, end); err != nil {
			w.storageError(err, "write fragment (retry)")
		}
	}
	if err != nil {
		w.log.Error("fragment lost: dropping until the next keyframe", "file", w.cur.path, "frames", len(w.pending), "err", err)
		w.m.droppedFrames.WithLabelValues("write_error").Add(float64(len(w.pending)))
		w.dropGOP(1)
		var torn *tornError
		if errors.As(err, &torn) {
			// The file's end is unknown: stop writing to it. The next start
			// repairs it (ReadSegment finds the last complete fragment).
			w.log.Error("segment abandoned after a torn write", "file", w.cur.path)
			w.cur.abandon()
			w.cur = nil
			w.st.setSegment("")
		}
		return
	}
	w.m.writeSeconds.Observe(time.Since(start).Seconds())
	w.cur.seq++
	w.cur.end = end
	w.cur.lastSeq, w.cur.lastDTS = last.seq, last.dts
	w.cur.frames += len(w.pending)
	for _, p := range w.pending {
		w.cur.bytes += int64(len(p.sample))
	}
	now := time.Now()
	w.m.fragments.Inc()
	w.m.frames.Add(float64(len(w.pending)))
	w.m.bytes.Add(float64(len(b)))
	w.m.lastWrite.Set(float64(now.UnixNano()) / 1e9)
	w.st.lastWrite.Store(now.UnixNano())
	w.st.lastWriteMono.Store(clock.Mono())
	w.st.durableMono.Store(last.mono)
}

// dropGOP notes that the GOP being written is lost and asks for a keyframe
// to resume at.
func (w *writer) dropGOP(n int) {
	w.m.droppedGOPs.WithLabelValues("write_error").Add(float64(n))
	w.needKey = true
	w.keyframe()
}

// storageError logs a failed write clearly and counts it. On a full disk it
// runs retention, deleting the oldest segments regardless of the limits,
// and reports whether that freed space (worth a retry).
func (w *writer) storageError(err error, op string) bool {
	label := errnoLabel(err)
	w.m.writeErrors.WithLabelValues(label).Inc()
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		w.log.Error("storage full (ENOSPC): deleting the oldest segments to go on recording", "op", op, "err", err)
		need := max(w.cfg.QueueBytes, 64<<20)
		return w.ret.free(need)
	case errors.Is(err, syscall.EIO):
		w.log.Error("storage I/O error (EIO): the disk or card may be failing", "op", op, "err", err)
	default:
		w.log.Error("storage error", "op", op, "err", err)
	}
	return false
}

// closeSegment writes what is pending (next, when given, is the access
// unit after it) and finalises the current segment.
func (w *writer) closeSegment(next *au, reason string) {
	w.flush(next)
	if w.cur == nil {
		return
	}
	s := w.cur
	w.cur = nil
	w.st.setSegment("")
	if s.frames == 0 {
		// Nothing in it (its first fragment failed): not a recording.
		s.abandon()
		if err := w.cfg.FS.Remove(s.path); err != nil {
			w.log.Warn("remove empty segment", "file", s.path, "err", err)
		}
		return
	}
	if err := s.finalise(); err != nil {
		w.storageError(err, "finalise segment")
		return // left as .part: the next start repairs it
	}
	w.m.segments.Inc()
	dur := time.Duration(s.end) * time.Second / timescale
	w.log.Info("segment closed", "file", s.final, "duration", dur.Round(time.Millisecond), "frames", s.frames, "bytes", s.size, "reason", reason)
	w.ret.idx.add(closedFile{path: s.final, size: s.size, mtime: time.Now()})
	w.ret.run(time.Now(), w.openBytes())
}

// openBytes is the size of the segments retention must not delete.
func (w *writer) openBytes() int64 {
	n := int64(0)
	if w.cur != nil {
		n += w.cur.size
	}
	if w.resume != nil {
		n += w.resume.seg.ValidEnd
	}
	return n
}

// resolveResume decides, on the first access unit, whether the segment
// interrupted by a crash goes on (a follows its last access unit: the
// producer replayed exactly what was missing) or is finalised.
func (w *writer) resolveResume(a *au) {
	r := w.resume
	last := r.seg.Fragments[len(r.seg.Fragments)-1].Info
	if a.seq == last.LastSeq()+1 && a.dts > last.LastDTS {
		seg, err := reopenSegment(w.cfg.FS, r.path, r.seg)
		if err == nil {
			w.resume = nil
			seg.track = trackParams{width: r.seg.Width, height: r.seg.Height, sps: r.seg.SPS, pps: r.seg.PPS}
			w.cur = seg
			w.st.setSegment(seg.path)
			w.m.recovered.WithLabelValues("resumed").Inc()
			w.log.Info("resuming the segment interrupted by a crash: no frame lost", "file", r.path, "after_seq", last.LastSeq())
			return
		}
		w.log.Error("cannot reopen the interrupted segment", "file", r.path, "err", err)
	} else {
		w.log.Info("the interrupted segment is not continued: frames between it and the replay are missing",
			"file", r.path, "last_seq", last.LastSeq(), "next_seq", a.seq)
	}
	w.finaliseRecovered()
}

func (w *writer) finaliseRecovered() {
	r := w.resume
	w.resume = nil
	if err := finaliseFile(w.cfg.FS, r.path, r.seg); err != nil {
		w.storageError(err, "finalise interrupted segment")
		return
	}
	final := r.path[:len(r.path)-len(partSuffix)]
	w.ret.idx.add(closedFile{path: final, size: r.seg.ValidEnd, mtime: time.Now()})
	w.log.Info("interrupted segment finalised", "file", final)
}

// finaliseFile finalises a repaired segment that is not open.
func finaliseFile(fsys FS, path string, seg *Segment) error {
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	s := &segment{fs: fsys, f: f, path: path, final: path[:len(path)-len(partSuffix)], df: seg.durations, end: int64(seg.End())}
	return s.finalise()
}
