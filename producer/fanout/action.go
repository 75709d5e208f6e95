package fanout

import (
	"github.com/framehub/framehub/ipc"
)

// SubID identifies a subscriber (one consumer connection). The caller
// assigns it; it must be unique among the core's subscribers.
type SubID uint64

// Surface is the memory behind frames, as a subscriber learns it from an
// Announce: the entry (Info.NFDs is len(FDs)) and its fds, which the core
// never owns, opens or closes — they are borrowed from the surface's owner
// and must stay open until the frames in the surface are freed.
type Surface struct {
	Info ipc.Surface
	FDs  []int
}

// ActionKind says what an Action asks the caller to do.
type ActionKind uint8

// Action kinds.
const (
	// Announce: send Surfaces (and their fds) to Sub in one Announce.
	Announce ActionKind = iota + 1
	// Deliver: send Frame to Sub. If it cannot be sent (socket full), the
	// caller must call Unsent with its lease; if the peer is gone, Detach.
	Deliver
	// Forget: send a Forget of IDs to Sub.
	Forget
	// Send: send Msg (Caps, EOS) to Sub.
	Send
	// Close: Sub was detached by the core (evicted, reclaimed, rate
	// limited, bad release); send Bye{Code, Reason} after what was queued
	// before it and close the connection. Nothing follows for Sub.
	Close
	// Free: the frame's last lease and hold ended; call Free (the function
	// given to Publish) once. Sub is 0.
	Free
	// Notice: Count frames were skipped for Sub since the last notice, for
	// the reason in Why; at most one a second per subscriber, for a log.
	Notice
)

func (k ActionKind) String() string {
	switch k {
	case Announce:
		return "announce"
	case Deliver:
		return "deliver"
	case Forget:
		return "forget"
	case Send:
		return "send"
	case Close:
		return "close"
	case Free:
		return "free"
	case Notice:
		return "notice"
	}
	return "action(?)"
}

// Action is one thing the caller must do after a core call. Only the fields
// of its Kind are set.
type Action struct {
	Kind     ActionKind
	Sub      SubID
	Surfaces []Surface   // Announce: at most ipc.MaxFDsPerMessage fds in all
	Frame    ipc.Frame   // Deliver: complete, with the subscriber's lease, Dropped and flags
	IDs      []uint32    // Forget
	Msg      ipc.Message // Send
	Code     ipc.Code    // Close
	Reason   string      // Close
	Free     func()      // Free
	Count    uint64      // Notice
	Why      string      // Notice
}
