package producer

import (
	"sort"
	"time"

	"github.com/framehub/framehub/ipc"
)

// The replay buffer: a stream with StreamConfig.Replay keeps every frame of
// the last Replay seconds under a producer hold (a hold of its own, not a
// consumer's lease), so that a consumer that restarts, the recorder after a
// crash above all, can ask in Hello for the frames captured since a time it
// made durable and lose nothing. A replaying session has a cursor: the
// sequence number of the next frame to give it. It gets frames from the
// buffer, paced by its budget like any delivery, until the cursor reaches the
// newest frame; from then on it is live. Frames published meanwhile enter the
// buffer first, so catching up is lossless as long as the consumer is faster
// than the camera and the buffer does not shed what it has not read yet.
//
// The buffer pins surfaces. When the pool runs out, the oldest quarter of the
// buffer is let go before any frame is dropped at the source: replay is best
// effort, the live stream is not.

// retainLocked adds a freshly published frame to the replay buffer and lets
// go of frames older than the window.
func (st *Stream) retainLocked(fr *frame) {
	if st.cfg.Replay <= 0 {
		return
	}
	if err := st.table.Hold(fr.id); err != nil {
		panic(err)
	}
	st.ring = append(st.ring, fr)
	cut := 0
	for cut < len(st.ring)-1 && time.Duration(fr.msg.MonoNS-st.ring[cut].msg.MonoNS) > st.cfg.Replay {
		cut++
	}
	st.shedLocked(cut)
}

// shedLocked lets go of the n oldest frames of the replay buffer.
func (st *Stream) shedLocked(n int) {
	for _, old := range st.ring[:n] {
		st.unholdLocked(old.id)
	}
	st.ring = append(st.ring[:0], st.ring[n:]...)
}

// dropReplay lets go of the whole replay buffer (the server is closing).
func (st *Stream) dropReplay() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.shedLocked(len(st.ring))
}

// shedForPool lets go of the oldest quarter of the replay buffer because
// the pool is exhausted. It reports whether it freed anything.
func (st *Stream) shedForPool() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := (len(st.ring) + 3) / 4
	if n == 0 {
		return false
	}
	st.shedLocked(n)
	st.ctr.replayShed.Add(uint64(n))
	now := time.Now()
	if now.Sub(st.lastShedLog) >= time.Second {
		st.lastShedLog = now
		window := time.Duration(0)
		if len(st.ring) > 1 {
			window = time.Duration(st.ring[len(st.ring)-1].msg.MonoNS - st.ring[0].msg.MonoNS)
		}
		st.log.Warn("surface pool exhausted: shortening the replay buffer", "shed_frames", n, "window", window.Round(time.Millisecond))
	}
	return true
}

// startReplayLocked points a new session's cursor at the first buffered
// frame captured after fromNS (CLOCK_MONOTONIC).
func (st *Stream) startReplayLocked(ss *session, fromNS int64) {
	if fromNS <= 0 || st.cfg.Replay <= 0 || len(st.ring) == 0 {
		return
	}
	i := sort.Search(len(st.ring), func(i int) bool { return st.ring[i].msg.MonoNS > fromNS })
	if i == len(st.ring) {
		return // nothing newer than asked: live
	}
	ss.cursor = st.ring[i].msg.Seq
	if i == 0 {
		// The buffer does not reach back to the asked time: frames are
		// missing before the first replayed one.
		ss.discontNext = true
	}
}

// pumpLocked gives a replaying session buffered frames while it is below its
// budget, and makes it live once it has them all.
func (st *Stream) pumpLocked(ss *session, now time.Time) {
	for ss.cursor != 0 && !st.table.AtBudget(ss.cid) {
		i := sort.Search(len(st.ring), func(i int) bool { return st.ring[i].msg.Seq >= ss.cursor })
		if i == len(st.ring) {
			ss.cursor = 0 // caught up: every later frame is published live
			return
		}
		fr := st.ring[i]
		if i == 0 && fr.msg.Seq > ss.cursor {
			ss.discontNext = true // frames it had not read yet left the buffer
		}
		ss.extraFlags = ipc.FlagReplay
		if st.deliverLocked(ss, fr, now) {
			st.ctr.replayed.Add(1)
		}
		ss.extraFlags = 0
		ss.cursor = fr.msg.Seq + 1
	}
}
