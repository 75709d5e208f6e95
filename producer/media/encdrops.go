package media

import "sync"

// Why the encoder never encoded a raw frame: the reasons of
// framehub_producer_dropped_total{stream="h264"} that Stats counts.
const (
	// dropEncoderBusy: the frame waited in the encoder's input queue
	// (the appsrc, encSrcQueue frames, leaky) and a newer one replaced
	// it: the encoder was still busy with earlier frames (a slow encoder,
	// a loaded CPU).
	dropEncoderBusy = "encoder_busy"
	// dropEncoderSkipped: the encoder took the frame and gave no access
	// unit for it (its QoS, rate control, an internal drop).
	dropEncoderSkipped = "encoder_skipped"
	// dropTooLarge: the access unit did not fit an H264SlabSize slab.
	dropTooLarge = "too_large"
)

// maxUnmatched bounds the raw frames the ledger waits for: far more than
// any low-latency encoder holds (x264enc tune=zerolatency: none).
const maxUnmatched = 256

// encoderLedger counts the raw frames the encoder never encoded, and why.
// The raw pump tells it of every frame pushed into the encoder's appsrc
// (and whether that queue was full, so that the push made the leaky
// queue drop the frame queued before); the H.264 pump of every access
// unit out. Encoders without B-frames (the pipeline asks for none) give
// access units in input order, with the input's PTS: each access unit
// settles the raw frames pushed before it, and those without one were
// never encoded. Frames still in flight when a run ends are not counted.
// It is safe for concurrent use; both pumps call it.
type encoderLedger struct {
	mu       sync.Mutex
	pending  []pushedFrame // pushed, not settled, in push order
	off      string        // why counting stopped ("" while it counts)
	busy     uint64        // dropEncoderBusy
	skipped  uint64        // dropEncoderSkipped
	unpaired uint64        // access units whose PTS matched no pending frame
}

type pushedFrame struct {
	pts      int64
	replaced bool // a newer push found the queue full while it waited there
}

// pushed records a raw frame of presentation time pts (ns, -1 unknown)
// pushed into the encoder's queue, which held queued frames before the
// push (of at most capacity). When a frame it marks as replaced by this
// push was in fact taken by the encoder in between (a race with the
// streaming thread) and then skipped, it is counted busy, not skipped.
func (l *encoderLedger) pushed(pts int64, queued, capacity int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.off != "" {
		return
	}
	if pts < 0 {
		l.stop("raw frames without a timestamp")
		return
	}
	if queued >= capacity && capacity > 0 {
		// The leaky queue drops its oldest frame: the capacity-th from
		// the end of what is pending (the others are in the encoder).
		if i := len(l.pending) - capacity; i >= 0 {
			l.pending[i].replaced = true
		}
	}
	if len(l.pending) >= maxUnmatched {
		l.stop("no access unit for the last 256 raw frames")
		return
	}
	l.pending = append(l.pending, pushedFrame{pts: pts})
}

// encoded settles the frames pushed before the access unit of
// presentation time pts: the one of that time was encoded, the earlier
// ones never will be.
func (l *encoderLedger) encoded(pts int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.off != "" {
		return
	}
	n := 0
	for n < len(l.pending) && l.pending[n].pts < pts {
		n++
	}
	if n == len(l.pending) || l.pending[n].pts != pts {
		// An access unit of a time never pushed: the encoder does not
		// keep timestamps, and nothing here can be trusted.
		l.unpaired++
		l.stop("an access unit's timestamp is no raw frame's: the encoder does not keep timestamps")
		return
	}
	for _, f := range l.pending[:n] {
		if f.replaced {
			l.busy++
		} else {
			l.skipped++
		}
	}
	l.pending = append(l.pending[:0], l.pending[n+1:]...)
}

// stop gives up counting, saying why (the caller holds mu).
func (l *encoderLedger) stop(why string) {
	l.off = why
	l.pending = nil
}

// reset forgets the frames in flight (a new run of the pipeline), and
// counts again.
func (l *encoderLedger) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending, l.off = l.pending[:0], ""
}

// counts returns the frames never encoded, by reason, and why counting
// stopped ("" while it counts).
func (l *encoderLedger) counts() (busy, skipped uint64, off string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.busy, l.skipped, l.off
}
