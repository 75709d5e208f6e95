package fanout

import (
	"sort"
	"time"

	"github.com/framehub/framehub/ipc"
)

// The replay buffer: with Config.Replay the core keeps every frame of the
// last Replay (by capture time) under a hold of its own, so that a
// subscriber that comes back — the recorder after a crash above all — can
// ask for the frames captured since a time it made durable and lose none.
// A replaying subscriber has a cursor, the sequence number of the next
// frame to give it; it gets frames from the buffer, paced by its budget
// like any delivery, until the cursor passes the newest frame; from then on
// it is live. Frames published meanwhile enter the buffer first, so
// catching up loses nothing as long as the subscriber outpaces the camera
// and the buffer does not shed what it has not read yet.
//
// The buffer pins surfaces. When the source finds no free surface, Shed
// lets the oldest quarter go before anything else gives: replay is best
// effort, the live stream is not.

// retain adds a freshly published frame to the replay buffer and lets go of
// frames older than the window.
func (c *Core) retain(fr *frame) {
	if c.cfg.Replay <= 0 {
		return
	}
	c.hold(fr.id)
	c.ring = append(c.ring, fr)
	cut := 0
	for cut < len(c.ring)-1 && time.Duration(fr.msg.MonoNS-c.ring[cut].msg.MonoNS) > c.cfg.Replay {
		cut++
	}
	c.shed(cut)
}

// shed lets go of the n oldest frames of the replay buffer.
func (c *Core) shed(n int) {
	for _, old := range c.ring[:n] {
		c.unhold(old.id)
	}
	c.ring = append(c.ring[:0], c.ring[n:]...)
}

// Shed lets go of the oldest quarter of the replay buffer because the
// source found no free surface. It returns how many frames it let go (0:
// the buffer was empty).
func (c *Core) Shed() int {
	n := (len(c.ring) + 3) / 4
	c.shed(n)
	c.ctr.ReplayShed += uint64(n)
	return n
}

// DropReplay lets go of the whole replay buffer (the server is closing).
func (c *Core) DropReplay() { c.shed(len(c.ring)) }

// ReplayWindow is the capture-time span of the replay buffer.
func (c *Core) ReplayWindow() time.Duration {
	if len(c.ring) < 2 {
		return 0
	}
	return time.Duration(c.ring[len(c.ring)-1].msg.MonoNS - c.ring[0].msg.MonoNS)
}

// startReplay points a new subscriber's cursor at the first buffered frame
// captured after fromNS.
func (c *Core) startReplay(s *sub, fromNS int64) {
	if fromNS <= 0 || c.cfg.Replay <= 0 || len(c.ring) == 0 {
		return
	}
	i := sort.Search(len(c.ring), func(i int) bool { return c.ring[i].msg.MonoNS > fromNS })
	if i == len(c.ring) {
		return // nothing newer than asked: live
	}
	s.cursor = c.ring[i].msg.Seq
	if i == 0 {
		// The buffer does not reach back to the asked time: frames are
		// missing before the first replayed one.
		s.discont = true
	}
}

// pump gives a replaying subscriber buffered frames while it is below its
// budget, and makes it live once it has them all.
func (c *Core) pump(s *sub, now time.Time) {
	for s.cursor != 0 && !c.AtBudget(s.id) {
		i := sort.Search(len(c.ring), func(i int) bool { return c.ring[i].msg.Seq >= s.cursor })
		if i == len(c.ring) {
			s.cursor = 0 // caught up: every later frame is published live
			return
		}
		fr := c.ring[i]
		if i == 0 && fr.msg.Seq > s.cursor {
			s.discont = true // frames it had not read yet left the buffer
		}
		c.deliver(s, fr, now, ipc.FlagReplay)
		c.ctr.Replayed++
		s.cursor = fr.msg.Seq + 1
	}
}
