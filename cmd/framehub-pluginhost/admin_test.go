package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/sdk/plugin/host"
)

// The plugin host's /healthz has every daemon's keys and is 503 while a
// plugin is not running; /metrics has the build and each plugin's state.
func TestAdminHandler(t *testing.T) {
	h, err := host.New(host.Config{Socket: "/nonexistent/fh.sock", Logger: slog.New(slog.DiscardHandler),
		Plugins: []host.PluginConfig{{Name: "motion", Path: "/bin/true"}}})
	require.NoError(t, err)
	srv := httptest.NewServer(adminHandler(h))
	defer srv.Close()
	get := func(path string) (int, []byte) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}
	code, body := get("/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code, string(body))
	var hh map[string]any
	require.NoError(t, json.Unmarshal(body, &hh))
	require.Equal(t, false, hh["ok"])
	require.Equal(t, "plugin_down", hh["status"])
	require.Equal(t, "not running: motion (starting)", hh["reason"])
	require.Contains(t, hh, "since")
	require.Equal(t, map[string]any{"motion": "starting"}, hh["plugins"])

	code, body = get("/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `framehub_pluginhost_plugin_state{name="motion",state="starting"} 1`)
	require.Contains(t, string(body), `framehub_pluginhost_plugin_starts_total{name="motion"} 0`)
	require.Contains(t, string(body), `framehub_build_info{daemon="framehub-pluginhost"`)

	code, body = get("/status")
	require.Equal(t, http.StatusOK, code)
	var st []map[string]any
	require.NoError(t, json.Unmarshal(body, &st))
	require.Equal(t, "motion", st[0]["name"])
	require.Contains(t, st[0], "health")
	require.Contains(t, st[0]["health"], "uptime_seconds", "durations in seconds")
}
