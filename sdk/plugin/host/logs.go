package host

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/framehub/framehub/internal/restart"
)

// lineLogger re-logs what a plugin writes (stderr, or stdout after the
// handshake) line by line under the plugin's name: the restart engine's
// LineWriter splits the lines, line logs each. JSON lines, as written by
// plugin.Serve's slog handler or go-plugin's hclog, keep their level,
// message and attributes; other lines (panics, runtime errors, prints) are
// logged whole, at Error from the first "panic:"/"fatal error:" line on.
type lineLogger struct {
	*restart.LineWriter
	log     *slog.Logger
	stream  string
	pid     atomic.Int64
	inPanic bool // read and written by line only, which LineWriter serialises
}

func newLineLogger(log *slog.Logger, stream string) *lineLogger {
	w := &lineLogger{log: log, stream: stream}
	w.LineWriter = restart.NewLineWriter(w.line)
	return w
}

// SetPID adds the plugin's pid to later lines.
func (w *lineLogger) SetPID(pid int) { w.pid.Store(int64(pid)) }

// line logs one line.
func (w *lineLogger) line(b []byte) {
	if len(bytes.TrimSpace(b)) == 0 {
		return
	}
	attrs := []any{}
	if pid := w.pid.Load(); pid != 0 {
		attrs = append(attrs, "pid", int(pid))
	}
	if level, msg, kv, ok := parseJSONLine(b); ok {
		w.log.Log(context.Background(), prefixLevel(msg, level), msg, append(attrs, kv...)...)
		return
	}
	s := string(b)
	level := prefixLevel(s, slog.LevelInfo)
	switch {
	case w.stream == "stdout":
		level = slog.LevelWarn
	case strings.HasPrefix(s, "panic: ") || strings.HasPrefix(s, "fatal error: "):
		w.inPanic = true
		level = slog.LevelError
	case w.inPanic:
		level = slog.LevelError
	}
	w.log.Log(context.Background(), level, "plugin "+w.stream, append(attrs, "line", s)...)
}

// prefixLevel reads the level of a message in the "[DEBUG] ..." style of
// Go's log package (which go-plugin uses inside the plugin), else returns
// def.
func prefixLevel(msg string, def slog.Level) slog.Level {
	for _, p := range []struct {
		prefix string
		level  slog.Level
	}{{"[TRACE]", slog.LevelDebug - 4}, {"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo},
		{"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError}} {
		if strings.HasPrefix(msg, p.prefix) {
			return p.level
		}
	}
	return def
}

// parseJSONLine decodes a structured log line of slog's JSON handler
// ("time", "level", "msg") or hclog's ("@timestamp", "@level", "@message").
// The line's own time is dropped: the host's logger adds its own.
func parseJSONLine(b []byte) (slog.Level, string, []any, bool) {
	if b[0] != '{' {
		return 0, "", nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keep large integers (session ids, ns) exact
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return 0, "", nil, false
	}
	level := slog.LevelInfo
	for _, k := range []string{"level", "@level"} {
		if v, ok := m[k].(string); ok {
			var l slog.Level
			if l.UnmarshalText([]byte(strings.ToUpper(strings.TrimSpace(v)))) == nil {
				level = l
			} else if strings.EqualFold(v, "trace") {
				level = slog.LevelDebug - 4
			}
		}
	}
	msg := ""
	for _, k := range []string{"msg", "@message"} {
		if v, ok := m[k].(string); ok {
			msg = v
		}
	}
	for _, k := range []string{"time", "level", "msg", "@timestamp", "@level", "@message", "@module", "@caller"} {
		delete(m, k)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	kv := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		kv = append(kv, k, m[k])
	}
	return level, msg, kv, true
}
