package sdk

import (
	"sync/atomic"

	"github.com/framehub/framehub/ipc"
)

// keyWait is Options.StartAtKeyframe's state.
type keyWait struct {
	started bool          // a frame was seen: the subscription's start is behind
	waiting bool          // passing frames over until a keyframe
	asked   bool          // RequestKeyframe sent during this wait
	passed  bool          // a frame was passed over during this wait
	skipped atomic.Uint64 // Stats.WaitedForKeyframe
}

// atKeyframe applies Options.StartAtKeyframe to f, a frame Next received:
// it reports whether Next returns f, or released it because the consumer
// waits for a keyframe. Only Next calls it.
func (c *Client) atKeyframe(f *Frame) bool {
	if !c.opts.StartAtKeyframe || len(f.planes) > 0 { // raw frames have no keyframes
		return true
	}
	k := &c.key
	if !k.started || f.Discont() {
		k.started, k.waiting = true, true
	}
	if !k.waiting {
		return true
	}
	if f.Keyframe() {
		if k.passed {
			f.msg.Flags |= ipc.FlagDiscont // frames before it were not returned
		}
		k.waiting, k.asked, k.passed = false, false, false
		return true
	}
	if !k.asked {
		k.asked = true
		if err := c.RequestKeyframe(); err != nil {
			c.log.Debug("request a keyframe", "err", err)
		}
	}
	k.passed = true
	k.skipped.Add(1)
	f.Release()
	return false
}
