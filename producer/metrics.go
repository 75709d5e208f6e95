package producer

import (
	"encoding/json"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/framehub/framehub/internal/admin"
)

// Metrics exports a server's streams, sessions and pools to Prometheus.
// Everything but the lease hold-time histogram is read from the stats at
// scrape time, so the frame path pays nothing for it.
type Metrics struct {
	srv    *Server
	reg    *prometheus.Registry
	hold   *prometheus.HistogramVec
	health *admin.HealthClock

	dropsMu sync.Mutex
	drops   map[string]func() map[string]uint64 // by stream: more reasons of dropped_total (AddDrops)
}

// AddDrops adds to framehub_producer_dropped_total{stream} the reasons
// (and counts) that drops returns at each scrape: frames lost before the
// stream saw them, such as those the media pipeline's encoder never
// encoded. A reason the stream counts too is summed.
func (m *Metrics) AddDrops(stream string, drops func() map[string]uint64) {
	m.dropsMu.Lock()
	defer m.dropsMu.Unlock()
	if m.drops == nil {
		m.drops = map[string]func() map[string]uint64{}
	}
	m.drops[stream] = drops
}

// NewMetrics registers the server's metrics (and the Go runtime's) in a new
// registry. Call before streams are added so each stream's hold-time
// histogram is wired (Server.AddStream does it).
func NewMetrics(srv *Server) *Metrics {
	m := &Metrics{
		srv:    srv,
		health: admin.NewHealthClock(),
		reg:    prometheus.NewRegistry(),
		hold: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "framehub_producer_lease_hold_seconds",
			Help:    "How long consumers held a frame's lease before releasing it.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .033, .05, .1, .25, .5, 1, 2, 5, 10, 30},
		}, []string{"stream"}),
	}
	m.reg.MustRegister(m.hold, (*collector)(m), prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	srv.mu.Lock()
	srv.holdObs = m.hold
	for _, st := range srv.streams {
		st.setHoldObserver(m.hold.WithLabelValues(st.cfg.Name))
	}
	srv.mu.Unlock()
	return m
}

// Registry is where the metrics live, for a daemon that adds its own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Health is the producer's /healthz (admin.Health and its streams): not
// OK ("not_serving") before Start and once closing.
type Health struct {
	admin.Health
	Connections int                     `json:"connections"`
	Streams     map[string]StreamHealth `json:"streams"`
}

// StreamHealth is one stream in Health.
type StreamHealth struct {
	Consumers int    `json:"consumers"`
	Frames    uint64 `json:"frames"` // published since the start
}

// Health reports whether the server serves, and what.
func (m *Metrics) Health() Health {
	m.srv.mu.Lock()
	started, closed := m.srv.started, m.srv.closed
	streams := m.srv.streamListLocked()
	m.srv.mu.Unlock()
	h := Health{Health: admin.Healthy(), Streams: map[string]StreamHealth{}, Connections: m.srv.Stats().Connections}
	for _, st := range streams {
		s := st.Stats()
		h.Streams[st.cfg.Name] = StreamHealth{Consumers: s.Consumers, Frames: s.Published}
	}
	switch {
	case closed:
		h.Fail("not_serving", "the producer is stopping")
	case !started:
		h.Fail("not_serving", "the producer has not started serving yet")
	}
	m.health.Stamp(&h.Health)
	return h
}

// Handler serves GET /metrics, GET /healthz (Health: 200 while serving)
// and GET /consumers (the sessions as JSON, ConsumerJSON, for framehubctl
// consumers).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		h := m.Health()
		admin.WriteHealth(w, h.OK, h)
	})
	mux.HandleFunc("GET /consumers", func(w http.ResponseWriter, r *http.Request) {
		infos := m.srv.Sessions()
		out := make([]ConsumerJSON, len(infos))
		for i, si := range infos {
			out[i] = consumerJSON(si)
		}
		w.Header().Set("Content-Type", "application/json")
		writeJSON(w, out)
	})
	return mux
}

// ConsumerJSON is one consumer in the producer's GET /consumers: a
// SessionInfo in framehub's JSON style (snake_case keys, durations in
// seconds, times in RFC 3339).
type ConsumerJSON struct {
	Session        uint64    `json:"session"`
	Name           string    `json:"name"`
	Stream         string    `json:"stream"`
	PID            int       `json:"pid"`
	UID            int       `json:"uid"`
	GID            int       `json:"gid"`
	Policy         string    `json:"policy"`
	Budget         int       `json:"budget"`
	MaxHoldSeconds float64   `json:"max_hold_seconds"`
	Connected      time.Time `json:"connected"`
	InFlight       int       `json:"in_flight"` // leases held now
	Pinned         int       `json:"pinned"`    // distinct surfaces those leases (and a pending frame) keep out of the pool
	Delivered      uint64    `json:"delivered"`
	SkippedBudget  uint64    `json:"skipped_budget"` // frames skipped at its budget (queue policy): drops
	SkippedSocket  uint64    `json:"skipped_socket"` // frames skipped because its socket was full: drops
	Superseded     uint64    `json:"superseded"`     // pending frames replaced by newer ones (latest policy): not drops
	Released       uint64    `json:"released"`
}

func consumerJSON(si SessionInfo) ConsumerJSON {
	return ConsumerJSON{
		Session: si.ID, Name: si.Name, Stream: si.Stream, PID: si.PID, UID: si.UID, GID: si.GID, Policy: string(si.Policy),
		Budget: si.Budget, MaxHoldSeconds: si.MaxHold.Seconds(), Connected: si.Connected.UTC(), InFlight: si.InFlight,
		Pinned: si.Pinned, Delivered: si.Delivered, SkippedBudget: si.SkippedBudget, SkippedSocket: si.SkippedSocket,
		Superseded: si.Superseded, Released: si.Released,
	}
}

type collector Metrics

var (
	descFrames     = prometheus.NewDesc("framehub_producer_frames_total", "Frames published.", []string{"stream"}, nil)
	descDelivered  = prometheus.NewDesc("framehub_producer_delivered_total", "Frame messages sent to consumers.", []string{"stream"}, nil)
	descDrops      = prometheus.NewDesc("framehub_producer_dropped_total", "Frames not delivered, by reason: pool_exhausted and lossless (dropped at the source for everyone), budget and socket_full (skipped for one consumer); h264 also encoder_busy, encoder_skipped and too_large (raw frames the encoder never turned into a delivered access unit).", []string{"stream", "reason"}, nil)
	descSuperseded = prometheus.NewDesc("framehub_producer_superseded_total", "Pending frames of latest-policy consumers replaced by a newer frame: skips by policy, not drops.", []string{"stream"}, nil)
	descEvictions  = prometheus.NewDesc("framehub_producer_evictions_total", "Consumers closed by the producer, by reason: max_hold (held a lease too long), reclaimed (the pool ran dry and it held most beyond its fair share), rate_limit (too many control messages).", []string{"stream", "reason"}, nil)
	descPromised   = prometheus.NewDesc("framehub_producer_promised_surfaces", "Surfaces promised to consumers (their budgets, plus one per latest-policy consumer) against the stream's capacity and the source's reserve.", []string{"stream", "of"}, nil)
	descReleased   = prometheus.NewDesc("framehub_producer_released_total", "Leases ended, by how: released by the consumer, or at its disconnect.", []string{"stream", "how"}, nil)
	descLeases     = prometheus.NewDesc("framehub_producer_leases", "Live leases.", []string{"stream"}, nil)
	descConsumers  = prometheus.NewDesc("framehub_producer_consumers", "Subscribed consumers.", []string{"stream"}, nil)
	descPool       = prometheus.NewDesc("framehub_producer_pool_surfaces", "Surfaces of a stream's pool, by state.", []string{"stream", "state"}, nil)
	descExhausted  = prometheus.NewDesc("framehub_producer_pool_exhausted_total", "Times a stream's pool had no free surface.", []string{"stream"}, nil)
	descReplay     = prometheus.NewDesc("framehub_producer_replay_frames", "Frames in a stream's replay buffer.", []string{"stream"}, nil)
	descKeyframes  = prometheus.NewDesc("framehub_producer_keyframe_requests_total", "Keyframe requests forwarded to the encoder.", []string{"stream"}, nil)
	descLeasesBy   = prometheus.NewDesc("framehub_producer_consumer_leases", "Live leases per consumer.", []string{"stream", "consumer", "session"}, nil)
	descSkipsBy    = prometheus.NewDesc("framehub_producer_consumer_skipped_total", "Frames skipped for a consumer (budget or full socket).", []string{"stream", "consumer", "session"}, nil)
	descDelivBy    = prometheus.NewDesc("framehub_producer_consumer_delivered_total", "Frames delivered to a consumer.", []string{"stream", "consumer", "session"}, nil)
	descConns      = prometheus.NewDesc("framehub_producer_connections", "Open consumer connections.", nil, nil)
	descRejected   = prometheus.NewDesc("framehub_producer_rejected_total", "Connections refused (Reject).", nil, nil)
	descProtoErr   = prometheus.NewDesc("framehub_producer_protocol_errors_total", "Consumers disconnected for breaking the protocol.", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFrames, descDelivered, descDrops, descSuperseded, descEvictions, descPromised, descReleased, descLeases,
		descConsumers, descPool, descExhausted, descReplay, descKeyframes, descLeasesBy, descSkipsBy, descDelivBy,
		descConns, descRejected, descProtoErr} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge := func(d *prometheus.Desc, v int, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), l...)
	}
	c.srv.mu.Lock()
	streams := c.srv.streamListLocked()
	c.srv.mu.Unlock()
	c.dropsMu.Lock()
	extra := make(map[string]func() map[string]uint64, len(c.drops))
	maps.Copy(extra, c.drops)
	c.dropsMu.Unlock()
	for _, st := range streams {
		n := st.cfg.Name
		s := st.Stats()
		counter(descFrames, s.Published, n)
		counter(descDelivered, s.Delivered, n)
		drops := map[string]uint64{"pool_exhausted": s.DroppedExhausted, "lossless": s.DroppedLossless,
			"budget": s.SkippedBudget, "socket_full": s.SkippedSocket}
		if f := extra[n]; f != nil {
			for reason, v := range f() {
				drops[reason] += v
			}
		}
		for reason, v := range drops {
			counter(descDrops, v, n, reason)
		}
		counter(descSuperseded, s.Superseded, n)
		counter(descEvictions, s.Evictions, n, "max_hold")
		counter(descEvictions, s.Reclaims, n, "reclaimed")
		counter(descEvictions, s.RateLimited, n, "rate_limit")
		gauge(descPromised, s.Promised, n, "promised")
		gauge(descPromised, s.Capacity, n, "capacity")
		gauge(descPromised, s.Reserve, n, "reserve")
		counter(descReleased, s.Released, n, "release")
		counter(descReleased, s.ReleasedOnClose, n, "disconnect")
		gauge(descLeases, s.Leases, n)
		gauge(descConsumers, s.Consumers, n)
		gauge(descPool, s.Pool.Free, n, "free")
		gauge(descPool, s.Pool.InUse, n, "in_use")
		gauge(descPool, s.Pool.Max, n, "max")
		counter(descExhausted, s.Pool.Exhausted, n)
		gauge(descReplay, s.ReplayFrames, n)
		counter(descKeyframes, s.KeyframeRequests, n)
	}
	for _, ss := range c.srv.Sessions() {
		id := strconv.FormatUint(ss.ID, 10)
		stream, name := peerLabel(ss.Stream), peerLabel(ss.Name) // chosen by the peer
		gauge(descLeasesBy, ss.InFlight, stream, name, id)
		counter(descSkipsBy, ss.SkippedBudget+ss.SkippedSocket, stream, name, id)
		counter(descDelivBy, ss.Delivered, stream, name, id)
	}
	ss := c.srv.Stats()
	gauge(descConns, ss.Connections)
	counter(descRejected, ss.Rejected)
	counter(descProtoErr, ss.ProtocolErrors)
}

func writeJSON(w http.ResponseWriter, v any) {
	_ = json.NewEncoder(w).Encode(v)
}
