package restart

import (
	"bytes"
	"sync"
)

// MaxLine bounds a line LineWriter keeps while it waits for the newline: a
// process that writes without newlines is relayed in pieces this long.
const MaxLine = 64 << 10

// LineWriter relays what a process writes (its stdout or stderr) one line
// at a time: an io.Writer that calls line with every complete line,
// without its newline (nor a carriage return before it), and keeps an
// incomplete last line until its newline comes, MaxLine bytes have
// gathered, or Flush. It is safe for concurrent use, and calls line from
// one goroutine at a time; line must not keep the slice.
type LineWriter struct {
	line func(b []byte)

	mu  sync.Mutex
	buf []byte
}

// NewLineWriter returns a writer that calls line with each line.
func NewLineWriter(line func(b []byte)) *LineWriter { return &LineWriter{line: line} }

// Write relays every complete line of p and keeps the rest. Writers such
// as go-plugin's write a line and its newline in separate calls.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(bytes.TrimSuffix(w.buf[:i], []byte("\r")))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) >= MaxLine {
		w.flushLocked()
	}
	if len(w.buf) == 0 {
		w.buf = nil // do not pin a large backing array
	}
	return len(p), nil
}

// Flush relays a last line the process wrote without its newline (call it
// once the process has exited).
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
}

func (w *LineWriter) flushLocked() {
	if len(w.buf) > 0 {
		w.line(w.buf)
	}
	w.buf = nil
}
