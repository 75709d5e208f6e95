package testutil

import (
	"fmt"
	"testing"
	"time"
)

// pollEvery is how often WaitUntil checks its condition: often enough
// that a test waits at most this long past the event, seldom enough that
// polling costs nothing on a loaded machine.
const pollEvery = 10 * time.Millisecond

// WaitUntil calls cond every 10 ms until it returns true, and fails the
// test (FailNow) when it has not within timeout, with the message format
// and args saying what was awaited. cond runs on the calling goroutine, so
// it may itself use require; unlike require.Eventually, a condition that
// is already true returns at once.
func WaitUntil(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if !Poll(timeout, pollEvery, cond) {
		t.Fatalf("waited %v for %s", timeout, fmt.Sprintf(format, args...))
	}
}

// Poll calls cond every interval until it returns true (then Poll returns
// true) or timeout passes (then false), for checks that report a failure
// themselves rather than through a testing.TB.
func Poll(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}
