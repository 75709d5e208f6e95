package web

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/framehub/framehub/internal/admin"
)

// metrics is framehub-web's /metrics: each camera's counters, read at
// scrape time from the camera itself (no second set of counters to keep in
// step).
type metrics struct {
	s *Server

	connected, viewers, received, drops, dials, keyRequests, sessions *prometheus.Desc
}

func newMetricsHandler(s *Server) http.Handler {
	m := &metrics{s: s,
		connected: prometheus.NewDesc("framehub_web_connected", "1 while the camera is subscribed to its producer's H.264 stream.",
			[]string{"camera"}, nil),
		viewers: prometheus.NewDesc("framehub_web_viewers", "Live viewers of the camera: WebRTC sessions, and 1 for hls while its muxer runs.",
			[]string{"camera", "kind"}, nil),
		received: prometheus.NewDesc("framehub_web_access_units_received_total", "H.264 access units received from the producer.",
			[]string{"camera"}, nil),
		drops: prometheus.NewDesc("framehub_web_viewer_drops_total", "Access units viewers lost because their queue was full (each then skipped to the next keyframe).",
			[]string{"camera"}, nil),
		dials: prometheus.NewDesc("framehub_web_producer_dials_total", "Subscriptions attempted to the camera's producer.",
			[]string{"camera"}, nil),
		keyRequests: prometheus.NewDesc("framehub_web_keyframe_requests_total", "Keyframe requests sent to the producer for joining or resynchronising viewers.",
			[]string{"camera"}, nil),
		sessions: prometheus.NewDesc("framehub_web_webrtc_sessions", "WHEP sessions of the daemon.", nil, nil),
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m, admin.BuildInfo("framehub-web"))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.connected, m.viewers, m.received, m.drops, m.dials, m.keyRequests, m.sessions} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, name := range m.s.order {
		c := m.s.cams[name]
		st := c.status()
		conn := 0.0
		if st.Connected {
			conn = 1
		}
		ch <- prometheus.MustNewConstMetric(m.connected, prometheus.GaugeValue, conn, name)
		for _, kind := range []string{"webrtc", "hls"} {
			ch <- prometheus.MustNewConstMetric(m.viewers, prometheus.GaugeValue, float64(st.Viewers[kind]), name, kind)
		}
		ch <- prometheus.MustNewConstMetric(m.received, prometheus.CounterValue, float64(c.received.Load()), name)
		ch <- prometheus.MustNewConstMetric(m.drops, prometheus.CounterValue, float64(c.viewerDrops.Load()), name)
		ch <- prometheus.MustNewConstMetric(m.dials, prometheus.CounterValue, float64(c.dials.Load()), name)
		ch <- prometheus.MustNewConstMetric(m.keyRequests, prometheus.CounterValue, float64(c.keys.Sent()), name)
	}
	ch <- prometheus.MustNewConstMetric(m.sessions, prometheus.GaugeValue, float64(m.s.webrtc.count()))
}
