package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/supervisor"
	"github.com/framehub/framehub/producer"
)

// fakeDaemon serves mux behind the admin guard on a loopback port and
// returns its address and token file.
func fakeDaemon(t *testing.T, mux *http.ServeMux) (string, string) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g, err := admin.NewGuard(ln.Addr().String(), admin.Access{TokenFile: tokenFile})
	require.NoError(t, err)
	srv := &http.Server{Handler: g.Wrap(mux), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), tokenFile
}

func ctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// Every command takes -addr and -json.
func TestEveryCommandHasAddrAndJSON(t *testing.T) {
	for _, c := range commands() {
		args := []string{c.name, "-h"}
		if c.name == "record" {
			args = []string{"record", "event", "-h"}
		}
		code, _, stderr := ctl(t, args...)
		require.Equal(t, 0, code, "%v: %s", args, stderr)
		require.Contains(t, stderr, "  -addr string", "%v", args)
		require.Contains(t, stderr, "  -json", "%v", args)
	}
}

func TestConsumersJSON(t *testing.T) {
	connected := time.Now().Add(-time.Minute).UTC()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /consumers", func(w http.ResponseWriter, _ *http.Request) {
		// What the producer serves, from its own type.
		_ = json.NewEncoder(w).Encode([]producer.ConsumerJSON{{Session: 3, Name: "framehub-snapshot", Stream: "raw", PID: 42,
			Policy: "latest", Budget: 1, MaxHoldSeconds: 2.5, Connected: connected, Delivered: 10, SkippedBudget: 1,
			SkippedSocket: 2, Superseded: 300}})
	})
	addr, tok := fakeDaemon(t, mux)
	code, out, stderr := ctl(t, "consumers", "-addr", addr, "-token-file", tok, "-json")
	require.Equal(t, 0, code, stderr)
	var got []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Equal(t, 2.5, got[0]["max_hold_seconds"])
	require.Equal(t, 300.0, got[0]["superseded"])
	require.Equal(t, "framehub-snapshot", got[0]["name"])
	require.Equal(t, connected.Format(time.RFC3339Nano), got[0]["connected"])

	code, out, stderr = ctl(t, "consumers", "-producer", addr, "-token-file", tok)
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	require.Equal(t, []string{"SESSION", "NAME", "STREAM", "PID", "POLICY", "BUDGET", "LEASES", "MAX", "HOLD", "DELIVERED", "SKIPPED",
		"SUPERSEDED", "CONNECTED"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"3", "framehub-snapshot", "raw", "42", "latest", "1", "0", "2.5s", "10", "3", "300", "1m0s"},
		strings.Fields(lines[1]), "skipped is budget + socket; superseded apart")
}

func TestRecordEventOutput(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /record/event", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"file":"/rec/x-event-door.mp4","start":%q,"pre_seconds":5,"post_seconds":10,"extended":false}`+"\n",
			start.Format(time.RFC3339Nano))
	})
	addr, tok := fakeDaemon(t, mux)
	code, out, stderr := ctl(t, "record", "event", "-addr", addr, "-token-file", tok, "-label", "door")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "event recording: /rec/x-event-door.mp4, from 2026-12-01T10:00:00Z (5.0 s before the event, 10.0 s after)\n", out)
	code, out, stderr = ctl(t, "record", "event", "-addr", addr, "-token-file", tok, "-json")
	require.Equal(t, 0, code, stderr)
	var ev map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &ev), out)
	require.Equal(t, map[string]any{"file": "/rec/x-event-door.mp4", "start": "2026-12-01T10:00:00Z", "pre_seconds": 5.0,
		"post_seconds": 10.0, "extended": false}, ev)
	code, _, stderr = ctl(t, "record", "event", "-addr", addr, "extra")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `unexpected argument "extra"`)
}

func TestLogsJSON(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /logs", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "recorder", r.URL.Query().Get("name"))
		fmt.Fprint(w, "first line\nsecond \"line\"\n")
	})
	addr, tok := fakeDaemon(t, mux)
	code, out, stderr := ctl(t, "logs", "-addr", addr, "-token-file", tok, "-json", "recorder")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, `{"process":"recorder","line":"first line"}`+"\n"+`{"process":"recorder","line":"second \"line\""}`+"\n", out)
}

// status shows why a process failed, what one waits for, and the error
// line a crashed run wrote; -json has the same, durations in seconds.
func TestStatusNotes(t *testing.T) {
	now := time.Now().UTC()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(supervisor.StatusResponse{Started: now, Processes: []supervisor.ChildStatus{
			{Name: "producer", State: supervisor.StateStarting, PID: 7, Started: now.Add(-90 * time.Second),
				WaitingFor: "its ready socket /run/framehub/framehub.sock to accept connections"},
			{Name: "recorder", State: supervisor.StateWaiting, WaitingFor: "producer (starting: /run/framehub/framehub.sock does not accept connections yet)"},
			{Name: "streamer", State: supervisor.StateFailed, LastExit: "exit status 2", LastError: "flag provided but not defined: -bogus",
				Error: "crash loop: streamer exited 5 times in a row, each within 30s of starting (last: exit status 2: flag provided but not defined: -bogus); giving up"},
			{Name: "snapshot", State: supervisor.StateReady, PID: 9, Restarts: 1, LastExit: "killed by SIGKILL", Started: now.Add(-time.Hour)},
		}})
	})
	addr, tok := fakeDaemon(t, mux)
	code, out, stderr := ctl(t, "status", "-addr", addr, "-token-file", tok, "-producer", "")
	require.Equal(t, 0, code, stderr)
	for _, want := range []string{
		"waiting for its ready socket /run/framehub/framehub.sock to accept connections",
		"waiting for producer (starting: /run/framehub/framehub.sock does not accept connections yet)",
		"crash loop: streamer exited 5 times",
		"last exit: killed by SIGKILL",
	} {
		require.Contains(t, out, want)
	}
	code, out, stderr = ctl(t, "status", "-addr", addr, "-token-file", tok, "-json")
	require.Equal(t, 0, code, stderr)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
	require.InDelta(t, 90, rows[0]["uptime_seconds"], 5)
	require.Equal(t, "flag provided but not defined: -bogus", rows[2]["last_error"])
	require.Equal(t, "producer (starting: /run/framehub/framehub.sock does not accept connections yet)", rows[1]["waiting_for"])
	for _, r := range rows {
		for k := range r {
			require.Equal(t, strings.ToLower(k), k, "snake_case keys")
		}
	}
}
