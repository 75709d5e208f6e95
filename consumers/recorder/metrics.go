package recorder

import (
	"errors"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/framehub/framehub/internal/admin"
)

// metrics are the recorder's Prometheus metrics, on a registry of its own
// (Recorder.Registry).
type metrics struct {
	reg           *prometheus.Registry
	segments      prometheus.Counter
	bytes         prometheus.Counter
	frames        prometheus.Counter
	fragments     prometheus.Counter
	droppedGOPs   *prometheus.CounterVec
	droppedFrames *prometheus.CounterVec
	gaps          prometheus.Counter
	writeSeconds  prometheus.Histogram
	writeErrors   *prometheus.CounterVec
	deleted       *prometheus.CounterVec
	deletedBytes  prometheus.Counter
	events        prometheus.Counter
	replayed      prometheus.Counter
	reconnects    prometheus.Counter
	refetches     prometheus.Counter
	recovered     *prometheus.CounterVec
	lastWrite     prometheus.Gauge
}

func newMetrics(q *queue) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "framehub_recorder_" + name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "framehub_recorder_" + name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	m.segments = counter("segments_total", "Segments closed (finalised and renamed to .mp4).")
	m.bytes = counter("bytes_total", "Bytes written and fsync'ed, init boxes and fragments.")
	m.frames = counter("frames_total", "Access units written and fsync'ed.")
	m.fragments = counter("fragments_total", "Fragments written and fsync'ed.")
	m.droppedGOPs = vec("dropped_gops_total", "GOPs that lost frames: queue_full (storage slower than the camera), write_error (a fragment could not be written).", "reason")
	m.droppedFrames = vec("dropped_frames_total", "Access units not recorded: queue_full, write_error, wait_keyframe (after a gap, until the next keyframe), duplicate.", "reason")
	m.gaps = counter("gaps_total", "Gaps in the stream: frames the producer skipped or dropped, reconnects, producer restarts.")
	m.writeSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "framehub_recorder_write_seconds", Help: "Time to write and fsync one fragment.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	m.reg.MustRegister(m.writeSeconds)
	m.writeErrors = vec("write_errors_total", "Failed writes or fsyncs, by errno (ENOSPC, EIO, ... or other).", "errno")
	m.deleted = vec("retention_deleted_total", "Segments deleted: bytes (keep-bytes), age (keep-age), enospc (disk full).", "reason")
	m.deletedBytes = counter("retention_deleted_bytes_total", "Bytes of segments deleted by retention.")
	m.events = counter("events_total", "Events triggered (POST /record/event).")
	m.replayed = counter("replayed_frames_total", "Access units received from the producer's replay buffer.")
	m.reconnects = counter("reconnects_total", "Connections to the producer after the first.")
	m.refetches = counter("refetches_total", "Resubscriptions to fetch frames the producer skipped for the recorder from its replay buffer.")
	m.recovered = vec("recovered_segments_total", "Segments found unfinished at start: repaired (torn fragment cut, finalised), resumed (appended to).", "action")
	m.lastWrite = prometheus.NewGauge(prometheus.GaugeOpts{Name: "framehub_recorder_last_write_timestamp_seconds", Help: "Unix time of the last successful fragment write."})
	m.reg.MustRegister(m.lastWrite, admin.BuildInfo("framehub-recorder"))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "framehub_recorder_queue_bytes", Help: "Bytes of access units waiting to be written."},
		func() float64 { b, _, _ := q.depth(); return float64(b) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "framehub_recorder_queue_frames", Help: "Access units waiting to be written."},
		func() float64 { _, n, _ := q.depth(); return float64(n) }))
	for _, r := range []string{"queue_full", "write_error"} {
		m.droppedGOPs.WithLabelValues(r)
	}
	for _, r := range []string{"queue_full", "write_error", "wait_keyframe", "duplicate"} {
		m.droppedFrames.WithLabelValues(r)
	}
	return m
}

// errnoLabel names the errno behind err for the write_errors metric.
func errnoLabel(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return "other"
	}
	switch errno {
	case syscall.ENOSPC:
		return "ENOSPC"
	case syscall.EIO:
		return "EIO"
	case syscall.EDQUOT:
		return "EDQUOT"
	case syscall.EROFS:
		return "EROFS"
	}
	return "other"
}
