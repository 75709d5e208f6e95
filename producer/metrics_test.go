package producer_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/sdk"
)

// /metrics parses as Prometheus text and has the lease and drop series.
func TestMetricsEndpoint(t *testing.T) {
	log := testutil.Logger(t, slog.LevelError)
	p := producertest.StartProducer(t, producertest.Options{Manual: true, Width: 64, Height: 64, FPS: 30,
		PoolMax: 8, PoolName: "t", Config: producer.Config{Logger: log}})
	addr, st := p.Addr, p.Stream
	m := producer.NewMetrics(p.Srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, addr, sdk.Options{Name: "probe", MaxInFlight: 1, Logger: log})
	require.NoError(t, err)
	defer c.Close()
	for i := 0; i < 3; i++ { // the second and third are skipped: budget 1, nothing released
		s, err := st.Acquire()
		require.NoError(t, err)
		st.Publish(s, producer.FrameInfo{})
	}
	f, err := c.Next(ctx)
	require.NoError(t, err)
	time.Sleep(5 * time.Millisecond)
	f.Release()
	require.NoError(t, c.Flush())
	s, err := st.Acquire() // services the release
	require.NoError(t, err)
	st.Publish(s, producer.FrameInfo{})

	h := httptest.NewServer(m.Handler())
	defer h.Close()
	resp, err := h.Client().Get(h.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err, "/metrics must parse as Prometheus text")
	value := func(name string, labels map[string]string) float64 {
		f := fams[name]
		require.NotNil(t, f, "missing %s", name)
		for _, mt := range f.Metric {
			ok := true
			for k, v := range labels {
				found := false
				for _, lp := range mt.Label {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				ok = ok && found
			}
			if ok {
				switch {
				case mt.Counter != nil:
					return mt.Counter.GetValue()
				case mt.Gauge != nil:
					return mt.Gauge.GetValue()
				case mt.Histogram != nil:
					return float64(mt.Histogram.GetSampleCount())
				}
			}
		}
		t.Fatalf("%s%v not found", name, labels)
		return 0
	}
	require.Equal(t, 4.0, value("framehub_producer_frames_total", map[string]string{"stream": "raw"}))
	require.Equal(t, 2.0, value("framehub_producer_dropped_total", map[string]string{"stream": "raw", "reason": "budget"}))
	require.Equal(t, 1.0, value("framehub_producer_consumer_leases", map[string]string{"consumer": "probe"}))
	require.Equal(t, 1.0, value("framehub_producer_lease_hold_seconds", map[string]string{"stream": "raw"}))
	require.Equal(t, 1.0, value("framehub_producer_consumers", map[string]string{"stream": "raw"}))
	resp2, err := h.Client().Get(h.URL + "/healthz")
	require.NoError(t, err)
	require.Equal(t, 200, resp2.StatusCode)
	var health map[string]any
	require.NoError(t, json.NewDecoder(resp2.Body).Decode(&health))
	resp2.Body.Close()
	require.Equal(t, true, health["ok"])
	require.Equal(t, "ok", health["status"])
	require.Contains(t, health, "since")
	require.Equal(t, map[string]any{"raw": map[string]any{"consumers": 1.0, "frames": 4.0}}, health["streams"])
	resp3, err := h.Client().Get(h.URL + "/consumers")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp3.Body)
	resp3.Body.Close()
	// framehub's JSON style: snake_case keys, durations in seconds.
	var consumers []map[string]any
	require.NoError(t, json.Unmarshal(b, &consumers), string(b))
	require.Len(t, consumers, 1)
	cj := consumers[0]
	require.Equal(t, "probe", cj["name"])
	require.Equal(t, "raw", cj["stream"])
	require.Equal(t, 2.0, cj["max_hold_seconds"], string(b))
	require.Equal(t, 2.0, cj["skipped_budget"], string(b))
	for _, k := range []string{"session", "pid", "uid", "gid", "policy", "budget", "connected", "in_flight", "pinned", "delivered",
		"skipped_socket", "superseded", "released"} {
		require.Contains(t, cj, k, string(b))
	}
	require.False(t, strings.ContainsAny(strings.Join(mapKeys(cj), ""), "ABCDEFGHIJKLMNOPQRSTUVWXYZ"), string(b))
}

func mapKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
