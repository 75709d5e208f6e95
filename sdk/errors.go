package sdk

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by methods of a closed Client.
	ErrClosed = errors.New("sdk: client closed")
	// ErrEvicted means the producer disconnected this consumer because a
	// lease was held past MaxHold, or because its pool ran dry while this
	// consumer held more than its fair share. Frames received before are
	// invalid.
	ErrEvicted = errors.New("sdk: evicted by the producer")
	// ErrDisconnected means the connection to the producer ended.
	ErrDisconnected = errors.New("sdk: disconnected from the producer")
	// ErrStale is returned by a Frame's data accessors once the frame's
	// connection ended or the frame was released: its lease is gone and the
	// producer may reuse the surface.
	ErrStale = errors.New("sdk: frame no longer leased")
	// ErrNoCPUMapping is returned by a Frame's data accessors when its
	// surface is memory the CPU cannot map (cuda surfaces, DMA-BUFs of GPU
	// memory: Surface.CPUMappable). Use the device's API instead:
	// package sdk/cuda for cuda surfaces.
	ErrNoCPUMapping = errors.New("sdk: surface has no CPU mapping")
)

// RejectError is returned by Dial when the producer refuses the Hello.
type RejectError struct {
	Code   Code
	Reason string
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("sdk: producer rejected the subscription (%v): %s", e.Code, e.Reason)
}

// ByeError is the cause of a disconnect that the producer explained with a
// Bye. It wraps ErrEvicted for CodeMaxHold and CodeReclaimed (the consumer
// held frames too long, or more than its share of a pool that ran dry) and
// ErrDisconnected otherwise.
type ByeError struct {
	Code   Code
	Reason string
}

func (e *ByeError) Error() string {
	return fmt.Sprintf("sdk: producer closed the connection (%v): %s", e.Code, e.Reason)
}

// Unwrap lets errors.Is match ErrEvicted or ErrDisconnected.
func (e *ByeError) Unwrap() error {
	if e.Code == CodeMaxHold || e.Code == CodeReclaimed {
		return ErrEvicted
	}
	return ErrDisconnected
}
