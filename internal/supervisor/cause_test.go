package supervisor

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestExitCause(t *testing.T) {
	usage := strings.Split("Usage: framehub-recorder [flags]\n\nRecords.\n\nFlags:\n  -admin string\n    \tadmin address", "\n")
	for _, c := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"bad flag above the usage", append([]string{"flag provided but not defined: -bogus"}, usage...), "flag provided but not defined: -bogus"},
		{"bad value", append([]string{`invalid value "x" for flag -fps: parse error`}, usage...), `invalid value "x" for flag -fps: parse error`},
		{"panic", []string{"time=2026-12-01T00:00:00Z level=INFO msg=started", "panic: runtime error: index out of range [3] with length 3", "", "goroutine 1 [running]:", "main.main()"}, "panic: runtime error: index out of range [3] with length 3"},
		{"last error log line", []string{"time=2026-12-01T00:00:00Z level=ERROR msg=first", "time=2026-12-01T00:00:01Z level=ERROR msg=\"recorder failed\" err=\"no space left on device\"", "time=2026-12-01T00:00:01Z level=INFO msg=bye"}, "level=ERROR msg=\"recorder failed\" err=\"no space left on device\""},
		{"json log", []string{`{"time":"2026-12-01T00:00:00Z","level":"ERROR","msg":"boom"}`}, `{"time":"2026-12-01T00:00:00Z","level":"ERROR","msg":"boom"}`},
		{"config error", []string{"time=2026-12-01T00:00:00Z level=INFO msg=hello", "framehub-recorder: rec.yaml:4: segmnt: unknown key; did you mean \"segment\"?"}, "framehub-recorder: rec.yaml:4: segmnt: unknown key; did you mean \"segment\"?"},
		{"only a warning", []string{"time=2026-12-01T00:00:00Z level=WARN msg=\"disk almost full\"", "time=2026-12-01T00:00:00Z level=INFO msg=exiting"}, "level=WARN msg=\"disk almost full\""},
		{"silent", []string{"time=2026-12-01T00:00:00Z level=INFO msg=exiting", ""}, ""},
		{"nothing", nil, ""},
	} {
		require.Equal(t, c.want, exitCause(c.lines), c.name)
	}
}

// The ring gives the lines of one run (since its mark), also after it
// wrapped around.
func TestLogRingSince(t *testing.T) {
	r := newLogRing(4)
	r.add("a")
	m := r.mark()
	require.Empty(t, r.since(m))
	r.add("b")
	r.add("c")
	require.Equal(t, []string{"b", "c"}, r.since(m))
	for _, l := range []string{"d", "e", "f", "g"} {
		r.add(l)
	}
	require.Equal(t, []string{"d", "e", "f", "g"}, r.since(m), "what the ring still holds")
	require.Equal(t, []string{"f", "g"}, r.last(2))
}

// A consumer waiting for the producer says so, and why: the producer is
// starting and its socket does not accept connections yet. A starting
// producer says it waits for its ready socket.
func TestWaitingSaysForWhat(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "p.sock")
	producer := proc("producer", "serve", "FH_SOCK="+sock, "FH_DELAY=1500ms", "FH_MARK="+filepath.Join(dir, "producer"))
	producer.ReadySocket = sock
	rec := proc("recorder", "consumer", "FH_MARK="+filepath.Join(dir, "recorder"))
	s, _, _ := startSupervisor(t, Config{Processes: []Process{producer, rec}})
	// The producer sleeps 1.5 s before it listens: long enough for the
	// recorder to see it starting.
	want := "producer (starting: " + sock + " does not accept connections yet)"
	require.Eventually(t, func() bool { return state(s, "recorder").WaitingFor == want }, waitFor, 5*time.Millisecond,
		"recorder waits for %q", state(s, "recorder").WaitingFor)
	require.Equal(t, StateWaiting, state(s, "recorder").State)
	require.Equal(t, StateStarting, state(s, "producer").State)
	require.Equal(t, "its ready socket "+sock+" to accept connections", state(s, "producer").WaitingFor)
	readMark(t, filepath.Join(dir, "recorder"))
	require.Eventually(t, func() bool { return state(s, "recorder").State == StateReady }, waitFor, 5*time.Millisecond)
	require.Empty(t, state(s, "recorder").WaitingFor)
	require.Empty(t, state(s, "producer").WaitingFor)
}

// A failed run's last error line is in the status, also when the process
// wrote it without a newline; a run that ends well has none.
func TestLastErrorOfARun(t *testing.T) {
	sh := func(name, script string) Process {
		return Process{Name: name, Binary: "/bin/sh", Args: []string{"-c", script}, Restart: Restart{Policy: "never"}}
	}
	s, _, _ := startSupervisor(t, Config{Processes: []Process{
		sh("unterminated", "echo starting; printf 'fatal: no camera at /dev/video0' >&2; exit 3"),
		sh("usage", "echo 'flag provided but not defined: -bogus' >&2; echo 'Usage: x [flags]' >&2; echo '  -v  verbose' >&2; exit 2"),
		sh("fine", "echo 'all done'; exit 0"),
	}})
	for name, want := range map[string][2]string{
		"unterminated": {"exit status 3", "fatal: no camera at /dev/video0"},
		"usage":        {"exit status 2", "flag provided but not defined: -bogus"},
		"fine":         {"exit status 0", ""},
	} {
		require.Eventually(t, func() bool { return state(s, name).State == StateStopped }, waitFor, 5*time.Millisecond, name)
		st := state(s, name)
		require.Equal(t, want[0], st.LastExit, name)
		require.Equal(t, want[1], st.LastError, name)
		require.False(t, st.ExitedAt.IsZero(), name)
	}
}
