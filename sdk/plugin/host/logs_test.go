package host

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/restart"
)

func newTestLineLogger(stream string) (*lineLogger, *bytes.Buffer) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug - 4,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})).With("plugin", "p")
	return newLineLogger(log, stream), &buf
}

func TestLineLoggerRelogsPluginOutput(t *testing.T) {
	w, buf := newTestLineLogger("stderr")
	w.SetPID(42)
	// go-plugin writes a line and its newline separately; lines may also
	// arrive in pieces or several at once.
	for _, chunk := range []string{
		`{"time":"2026-01-01T00:00:00Z","level":"WARN","msg":"evicted","session":18446744073709551615,"err":"x"}`, "\n",
		`{"@level":"debug","@message":"plugin address","@timestamp":"t","network":"unix"}` + "\n" + `{"level":"INFO","msg":"[DEBUG] plugin: accept: closed"}` + "\n",
		"plain ", "text\n",
		"panic: boom\n", "\n", "goroutine 1 [running]:\n",
	} {
		n, err := w.Write([]byte(chunk))
		require.NoError(t, err)
		require.Equal(t, len(chunk), n)
	}
	_, _ = w.Write([]byte("no newline at the end"))
	w.Flush()
	want := []string{
		`level=WARN msg=evicted plugin=p pid=42 err=x session=18446744073709551615`,
		`level=DEBUG msg="plugin address" plugin=p pid=42 network=unix`,
		`level=DEBUG msg="[DEBUG] plugin: accept: closed" plugin=p pid=42`,
		`level=INFO msg="plugin stderr" plugin=p pid=42 line="plain text"`,
		`level=ERROR msg="plugin stderr" plugin=p pid=42 line="panic: boom"`,
		`level=ERROR msg="plugin stderr" plugin=p pid=42 line="goroutine 1 [running]:"`,
		`level=ERROR msg="plugin stderr" plugin=p pid=42 line="no newline at the end"`,
	}
	require.Equal(t, want, strings.Split(strings.TrimSpace(buf.String()), "\n"))
}

func TestLineLoggerStdoutIsAWarning(t *testing.T) {
	w, buf := newTestLineLogger("stdout")
	_, _ = w.Write([]byte("hello\n"))
	require.Equal(t, `level=WARN msg="plugin stdout" plugin=p line=hello`, strings.TrimSpace(buf.String()))
}

func TestLineLoggerSplitsHugeLines(t *testing.T) {
	w, buf := newTestLineLogger("stderr")
	chunk := bytes.Repeat([]byte("x"), 1000)
	for range 3 * restart.MaxLine / len(chunk) {
		_, _ = w.Write(chunk)
	}
	require.Equal(t, 2, strings.Count(buf.String(), "\n"), "a line without newline is logged in pieces of restart.MaxLine")
	w.Flush()
	require.Equal(t, 3, strings.Count(buf.String(), "\n"))
}

// TestStatesAreTheEngines: the host's states are the restart engine's.
func TestStatesAreTheEngines(t *testing.T) {
	require.Equal(t, string(restart.Starting), string(StateStarting))
	require.Equal(t, string(restart.Running), string(StateRunning))
	require.Equal(t, string(restart.Backoff), string(StateBackoff))
	require.Equal(t, string(restart.Stopped), string(StateStopped))
}
