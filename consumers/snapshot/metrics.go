package snapshot

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/framehub/framehub/internal/admin"
)

// metrics are one Service's Prometheus metrics, in a registry of its own
// (several services in one test process must not collide).
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec   // by result
	encode     *prometheus.HistogramVec // by encoder
	hold       prometheus.Histogram
	write      prometheus.Histogram
	queueDepth prometheus.Gauge
	failures   *prometheus.CounterVec // by reason
	durable    prometheus.Counter
	bytes      prometheus.Counter
}

// Request results, the "result" label of framehub_snapshot_requests_total.
const (
	resultOK           = "ok"
	resultBusy         = "storage_busy"
	resultInvalid      = "invalid"
	resultNotConnected = "not_connected"
	resultNoFrame      = "no_frame"
	resultError        = "error"
	resultCanceled     = "canceled"
)

// durationBuckets spans 1 ms to ~16 s: an encode takes milliseconds, a
// write to a stalling SD card seconds.
func durationBuckets() []float64 { return prometheus.ExponentialBuckets(0.001, 2, 15) }

// newMetrics creates the metrics; connected reports the subscription state.
func newMetrics(queueSize int, connected func() bool) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "framehub_snapshot_requests_total", Help: "Snapshot requests by result.",
		}, []string{"result"}),
		encode: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "framehub_snapshot_encode_seconds", Help: "Time to turn a frame into a JPEG (scaling included).",
			Buckets: durationBuckets(),
		}, []string{"encoder"}),
		hold: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "framehub_snapshot_lease_hold_seconds",
			Help:    "Time from receiving a frame chosen for a snapshot to releasing its lease.",
			Buckets: durationBuckets(),
		}),
		write: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "framehub_snapshot_write_seconds",
			Help:    "Time from accepting a snapshot to its file being durable (queueing, retries and fsyncs included).",
			Buckets: durationBuckets(),
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "framehub_snapshot_queue_depth", Help: "Snapshots accepted and not yet durable or failed.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "framehub_snapshot_failures_total",
			Help: "Failures by reason: storage_busy, not_connected, no_frame, encode, write_<errno>, sync_<errno>, gave_up, retention, webhook, event_socket, notify_dropped.",
		}, []string{"reason"}),
		durable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "framehub_snapshot_durable_total", Help: "Snapshots written and fsynced.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "framehub_snapshot_written_bytes_total", Help: "Bytes of durable snapshots.",
		}),
	}
	conn := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "framehub_snapshot_connected", Help: "1 while subscribed to the producer.",
	}, func() float64 {
		if connected() {
			return 1
		}
		return 0
	})
	queueCap := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "framehub_snapshot_queue_capacity", Help: "Snapshots the write queue holds before refusing requests.",
	})
	queueCap.Set(float64(queueSize))
	// Every result and fixed failure reason from 0: a series that appears
	// only at its first event reads as "no data" on a dashboard.
	for _, r := range []string{resultOK, resultBusy, resultInvalid, resultNotConnected, resultNoFrame, resultError, resultCanceled} {
		m.requests.WithLabelValues(r)
	}
	for _, r := range []string{"storage_busy", "not_connected", "no_frame", "encode", "gave_up", "retention", "webhook", "event_socket", "notify_dropped"} {
		m.failures.WithLabelValues(r)
	}
	m.reg.MustRegister(m.requests, m.encode, m.hold, m.write, m.queueDepth, m.failures, m.durable, m.bytes,
		conn, queueCap, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		admin.BuildInfo("framehub-snapshot"))
	return m
}
