package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// A daemon's health embeds Health: the four common keys, then its own;
// 503 when not OK.
func TestWriteHealth(t *testing.T) {
	type daemonHealth struct {
		Health
		QueueBytes int `json:"queue_bytes"`
	}
	for _, h := range []daemonHealth{
		{Health: Health{OK: true, Status: StatusOK, Since: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}, QueueBytes: 3},
		{Health: Health{OK: false, Status: "not_connected", Reason: "cannot reach the producer"}},
	} {
		w := httptest.NewRecorder()
		WriteHealth(w, h.OK, h)
		want := http.StatusOK
		if !h.OK {
			want = http.StatusServiceUnavailable
		}
		require.Equal(t, want, w.Code)
		require.Equal(t, "application/json", w.Header().Get("Content-Type"))
		var m map[string]any
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m))
		require.Equal(t, h.OK, m["ok"])
		require.Equal(t, h.Status, m["status"])
		require.Contains(t, m, "since")
		require.Equal(t, float64(h.QueueBytes), m["queue_bytes"])
		if h.OK {
			require.NotContains(t, m, "reason")
			require.Equal(t, "2026-12-01T10:00:00Z", m["since"])
		} else {
			require.Equal(t, h.Reason, m["reason"])
		}
	}
	h := Healthy()
	require.True(t, h.OK)
	h.Fail("storage_stalled", "the disk stalls")
	require.Equal(t, Health{Status: "storage_stalled", Reason: "the disk stalls"}, h)
}

// Since stays while the status stays, and moves when it changes.
func TestHealthClock(t *testing.T) {
	start := time.Now()
	c := NewHealthClock()
	h := Health{Status: "not_connected"}
	c.Stamp(&h)
	first := h.Since
	require.False(t, first.Before(start.Add(-time.Second)), "the first status dates from the clock's creation")
	require.False(t, first.After(time.Now()))
	c.Stamp(&h)
	require.Equal(t, first, h.Since)
	h.Status = StatusOK
	before := time.Now()
	c.Stamp(&h)
	require.False(t, h.Since.Before(before.Truncate(0).Add(-time.Microsecond)), "a new status dates from its first stamp")
	okSince := h.Since
	c.Stamp(&h)
	require.Equal(t, okSince, h.Since)
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(BuildInfo("framehub-test"))
	fams, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, fams, 1)
	require.Equal(t, "framehub_build_info", fams[0].GetName())
	m := fams[0].GetMetric()[0]
	require.Equal(t, 1.0, m.GetGauge().GetValue())
	b := ReadBuild()
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	require.Equal(t, map[string]string{"daemon": "framehub-test", "version": b.Version, "revision": b.Revision, "go_version": b.GoVersion}, labels)
	require.NotEmpty(t, b.Version)
	require.True(t, strings.HasPrefix(b.GoVersion, "go"), b.GoVersion)
}
