package producer_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/sdk"
)

// TestMetricsWithHostileNames is the "a consumer name breaks /metrics"
// hole of issue 16: a name that is not UTF-8 made every scrape answer 500,
// and 60 names of 64,992 bytes grew /metrics from 12 KB to 11.7 MB. Such
// names may be refused at Hello; either way /metrics must answer, parse,
// and stay bounded.
func TestMetricsWithHostileNames(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "p.sock")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := surface.NV12(64, 64, 64)
	require.NoError(t, err)
	pool, err := surface.NewPool(surface.PoolConfig{Allocator: surface.NewMemfd("t"), Size: l.Size, Max: 8})
	require.NoError(t, err)
	defer pool.Close()
	srv, err := producer.New(producer.Config{Addr: addr, MaxConnections: 128, MaxInFlight: 1, DefaultInFlight: 1, Logger: log})
	require.NoError(t, err)
	m := producer.NewMetrics(srv)
	_, err = srv.AddStream(producer.StreamConfig{Name: "raw", Caps: producer.RawCaps(l, 30, 1), Pool: pool})
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	defer srv.Close()
	h := httptest.NewServer(m.Handler())
	defer h.Close()

	scrape := func() string {
		resp, err := h.Client().Get(h.URL + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode, "%.300s", b)
		parser := expfmt.NewTextParser(model.UTF8Validation)
		_, err = parser.TextToMetricFamilies(strings.NewReader(string(b)))
		require.NoError(t, err, "/metrics must parse as Prometheus text")
		require.True(t, utf8.Valid(b))
		return string(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(name string) (*sdk.Client, bool) {
		c, err := sdk.Dial(ctx, addr, sdk.Options{Name: name, Logger: log})
		var rej *sdk.RejectError
		if errors.As(err, &rej) {
			return nil, false // refused at Hello: fine, /metrics must not care
		}
		require.NoError(t, err)
		return c, true
	}

	base := len(scrape())
	if c, ok := dial("bad\xff\xfename\x00"); ok {
		defer c.Close()
		require.Contains(t, scrape(), "consumer=\"bad\uFFFD\uFFFDname\uFFFD\"")
	}
	scrape()

	long := strings.Repeat("n", 64992)
	var admitted int
	for range 60 {
		if c, ok := dial(long); ok {
			defer c.Close()
			admitted++
		}
	}
	body := scrape()
	// Three per-consumer series of at most ~200 bytes each.
	require.Less(t, len(body), base+admitted*3*250+4096, "/metrics grew with the names' length")
	if admitted > 0 {
		require.Contains(t, body, `consumer="`+strings.Repeat("n", 61)+`…"`)
	}
}
