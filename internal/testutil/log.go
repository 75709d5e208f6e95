package testutil

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// tWriter sends what is written to t.Log until the test's cleanups run.
type tWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// LogWriter returns a writer that sends each write to t.Log, one log line a
// write, while the test runs. It goes quiet when the test's cleanups run:
// goroutines still logging then (a server shutting down) would otherwise
// make testing panic with "Log in goroutine after Test... has completed".
// Nothing to clean up.
func LogWriter(t testing.TB) io.Writer {
	w := &tWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

// Logger returns a logger writing records at level or above to t.Log (see
// LogWriter), so that a failing test shows what the code under test said.
// Nothing to clean up.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(LogWriter(t), &slog.HandlerOptions{Level: level}))
}
