package testutil

import (
	"bytes"
	"sync"
)

// LockedBuffer is a bytes.Buffer that several goroutines may use at once:
// a child process's stderr is written by os/exec's copying goroutine while
// the test reads it for a failure message. The zero value is ready to use;
// it must not be copied after first use.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Tail returns the last n bytes of s, marked with "..." when cut, so that a
// failure message shows the end of a long log (where the error usually is)
// without flooding the test output.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
