// Package clock reads the two clocks that frame timestamps use:
// CLOCK_MONOTONIC, which every process on the machine shares (so consumers
// can compute delivery latency against the producer's capture time), and
// CLOCK_REALTIME.
package clock

import (
	"time"
	_ "unsafe" // for go:linkname
)

// nanotime is the runtime's CLOCK_MONOTONIC reading (vDSO clock_gettime on
// Linux). It is linked rather than called through unix.ClockGettime because
// the latter is a real syscall (~0.3-1 µs in a VM), paid twice per frame per
// consumer on the hot path.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// Mono returns CLOCK_MONOTONIC in nanoseconds.
func Mono() int64 { return nanotime() }

// Real returns CLOCK_REALTIME in nanoseconds since the Unix epoch.
func Real() int64 { return time.Now().UnixNano() }

// Since returns the time elapsed since a CLOCK_MONOTONIC reading.
func Since(monoNS int64) time.Duration { return time.Duration(nanotime() - monoNS) }
