package recorder_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFirstFrameIsNoGap: a recorder in event mode asks the producer to
// replay the last -pre seconds; a producer younger than that has less, and
// says DISCONT on the first frame. Nothing is missing from a recording
// that has not started: no gap is counted or logged.
func TestFirstFrameIsNoGap(t *testing.T) {
	needGst(t)
	dir := t.TempDir()
	p := startProducer(t, dir)
	require.Eventually(t, func() bool {
		code, body, err := p.get("/metrics")
		return err == nil && code == http.StatusOK && sum(parseMetrics(body), "framehub_producer_frames_total", `stream="h264"`) >= 30
	}, waitTimeout, 20*time.Millisecond, "a second of h264 in the producer's replay buffer")
	r := startRecorder(t, p, dir, "-mode", "event", "-pre", "30s")
	// The receiver handles frames one after the other: once the second is
	// counted, the first one's gap check is done.
	require.Eventually(t, func() bool {
		code, body, err := r.get("/metrics")
		return err == nil && code == http.StatusOK && sum(parseMetrics(body), "framehub_recorder_replayed_frames_total") >= 2
	}, waitTimeout, 20*time.Millisecond, "replayed frames")
	m := r.metrics()
	require.Zero(t, sum(m, "framehub_recorder_gaps_total"), "a discontinuity before the first frame is no gap in the recording")
	require.NotContains(t, r.Log.String(), "gap")
}
