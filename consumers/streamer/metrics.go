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
	camViewers, camReceived, camLastFrameAge                                *prometheus.Desc
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
		camViewers:       d("camera_viewers", "RTSP viewers playing one camera's stream now.", "camera"),
		camReceived:      d("camera_frames_received_total", "Access units received from one camera's producer.", "camera"),
		camLastFrameAge:  d("camera_last_frame_age_seconds", "Time since the last access unit from one camera's producer (-1: none yet).", "camera"),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.viewers, c.bytesSent, c.framesSent, c.viewerDropped, c.sinkBytes, c.sinkFrames, c.sinkDropped,
		c.received, c.producerDropped, c.reconnects, c.dials, c.keyRequests, c.lastFrameAge, c.publishConnected, c.publishAttempts,
		c.camViewers, c.camReceived, c.camLastFrameAge,
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
	// The series without a camera label are the streamer's: sums over
	// its cameras (the oldest last frame), as they were with one camera.
	var tot sinkCounts
	var viewers int
	var received, producerDropped, resyncDropped, badAUs, reconnects, dials, keyRequests uint64
	oldest := 0.0
	for _, cam := range st.cams {
		t, _ := cam.hub.totals()
		tot.bytes, tot.frames, tot.dropped = tot.bytes+t.bytes, tot.frames+t.frames, tot.dropped+t.dropped
		camViewers := 0
		for _, s := range cam.hub.snapshot() {
			if s.id != publishSinkID {
				camViewers++
			}
			k := s.counts()
			counter(c.sinkBytes, k.bytes, s.id, s.remote, s.transport)
			counter(c.sinkFrames, k.frames, s.id, s.remote, s.transport)
			counter(c.sinkDropped, k.dropped, s.id, s.remote, s.transport)
		}
		viewers += camViewers
		src := cam.src
		received += src.received.Load()
		producerDropped += src.producerDropped.Load()
		resyncDropped += src.resyncDropped.Load()
		badAUs += src.badAUs.Load()
		reconnects += src.reconnects.Load()
		dials += src.dials.Load()
		keyRequests += src.keys.Sent()
		age := -1.0
		if t := cam.hub.lastFrame(); !t.IsZero() {
			age = time.Since(t).Seconds()
		}
		if oldest >= 0 && (age < 0 || age > oldest) {
			oldest = age
		}
		gauge(c.camViewers, float64(camViewers), cam.name)
		counter(c.camReceived, src.received.Load(), cam.name)
		gauge(c.camLastFrameAge, age, cam.name)
	}
	counter(c.bytesSent, tot.bytes)
	counter(c.framesSent, tot.frames)
	counter(c.viewerDropped, tot.dropped)
	gauge(c.viewers, float64(viewers))
	counter(c.received, received)
	counter(c.producerDropped, producerDropped, "producer")
	counter(c.producerDropped, resyncDropped, "resync")
	counter(c.producerDropped, badAUs, "malformed")
	counter(c.reconnects, reconnects)
	counter(c.dials, dials)
	counter(c.keyRequests, keyRequests)
	gauge(c.lastFrameAge, oldest)
	if p := st.pub; p != nil {
		v := 0.0
		if p.connected.Load() {
			v = 1
		}
		gauge(c.publishConnected, v)
		counter(c.publishAttempts, p.attempts.Load())
	}
}
