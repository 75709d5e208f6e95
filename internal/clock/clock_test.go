package clock

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Mono must be CLOCK_MONOTONIC itself, since other processes (a C or Python
// consumer) compare it with their own clock_gettime readings.
func TestMonoIsClockMonotonic(t *testing.T) {
	var ts unix.Timespec
	require.NoError(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts))
	before := ts.Nano()
	m := Mono()
	require.NoError(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts))
	after := ts.Nano()
	require.GreaterOrEqual(t, m, before)
	require.LessOrEqual(t, m, after)
}
