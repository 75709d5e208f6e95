package streamer

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes the streamer's counters to Prometheus. It reads them
// at scrape time from the hub, the source and the publisher, so that the
// per-viewer series exist exactly while their viewer does (no label
// bookkeeping, no stale series).
type collector struct {
	st *Streamer

	viewers, bytesSent, framesSent, viewerDropped                           *prometheus.Desc
	sinkBytes, sinkFrames, sinkDropped                                      *prometheus.Desc
	received, producerDropped, reconnects, keyRequests, lastFrameAge, dials *prometheus.Desc
	publishConnected, publishAttempts                                       *prometheus.Desc
}

func newCollector(st *Streamer) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("framehub_streamer_"+name, help, labels, nil)
	}
	perSink := []string{"viewer", "remote", "transport"}
	return &collector{
		st:            st,
		viewers:       d("viewers", "RTSP viewers playing now."),
		bytesSent:     d("bytes_sent_total", "RTP bytes sent to every viewer and the publish target, since start."),
		framesSent:    d("frames_sent_total", "Access units sent to every viewer and the publish target, since start."),
		viewerDropped: d("viewer_frames_dropped_total", "Access units viewers (and the publish target) lost for being slow, since start."),
		sinkBytes:     d("viewer_bytes_sent_total", "RTP bytes sent to one current viewer (viewer=\"publish\": the publish target).", perSink...),
		sinkFrames:    d("viewer_frames_sent_total", "Access units handed to one current viewer's transport.", perSink...),
		sinkDropped:   d("viewer_dropped_total", "Access units one current viewer lost for being slow (its queue overflowed, and what followed until the next keyframe).", perSink...),
		received:      d("producer_frames_received_total", "Access units received from the producer."),
		producerDropped: d("producer_frames_dropped_total", "Access units not served: skipped for us by the producer (reason=producer), "+
			"skipped waiting for a keyframe after a gap (reason=resync), or malformed (reason=malformed).", "reason"),
		reconnects:       d("producer_reconnects_total", "Times the subscription to the producer was re-established."),
		dials:            d("producer_dials_total", "Subscriptions started (first one, and after refusals)."),
		keyRequests:      d("keyframe_requests_total", "Keyframe requests sent to the producer."),
		lastFrameAge:     d("last_frame_age_seconds", "Time since the last access unit from the producer (-1: none yet)."),
		publishConnected: d("publish_connected", "1 while the stream is being published to -publish."),
		publishAttempts:  d("publish_attempts_total", "Attempts to publish to -publish."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.viewers, c.bytesSent, c.framesSent, c.viewerDropped, c.sinkBytes, c.sinkFrames, c.sinkDropped,
		c.received, c.producerDropped, c.reconnects, c.dials, c.keyRequests, c.lastFrameAge, c.publishConnected, c.publishAttempts,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.st
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	tot, _ := st.hub.totals()
	counter(c.bytesSent, tot.bytes)
	counter(c.framesSent, tot.frames)
	counter(c.viewerDropped, tot.dropped)
	viewers := 0
	for _, s := range st.hub.snapshot() {
		if s.id != publishSinkID {
			viewers++
		}
		k := s.counts()
		counter(c.sinkBytes, k.bytes, s.id, s.remote, s.transport)
		counter(c.sinkFrames, k.frames, s.id, s.remote, s.transport)
		counter(c.sinkDropped, k.dropped, s.id, s.remote, s.transport)
	}
	gauge(c.viewers, float64(viewers))
	src := st.src
	counter(c.received, src.received.Load())
	counter(c.producerDropped, src.producerDropped.Load(), "producer")
	counter(c.producerDropped, src.resyncDropped.Load(), "resync")
	counter(c.producerDropped, src.badAUs.Load(), "malformed")
	counter(c.reconnects, src.reconnects.Load())
	counter(c.dials, src.dials.Load())
	counter(c.keyRequests, src.keyRequests.Load())
	age := -1.0
	if t := st.hub.lastFrame(); !t.IsZero() {
		age = time.Since(t).Seconds()
	}
	gauge(c.lastFrameAge, age)
	if p := st.pub; p != nil {
		v := 0.0
		if p.connected.Load() {
			v = 1
		}
		gauge(c.publishConnected, v)
		counter(c.publishAttempts, p.attempts.Load())
	}
}
