package admin

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// StatusOK is Health.Status of a healthy daemon.
const StatusOK = "ok"

// Health is what every framehub daemon's GET /healthz answers first: the
// same four keys everywhere, so that one probe, script or dashboard reads
// them all. A daemon's health type embeds it and adds its own keys
// (snake_case, durations in seconds), which encoding/json puts beside
// them:
//
//	{"ok": false, "status": "not_connected", "reason": "cannot reach the producer at /run/framehub/framehub.sock: ...",
//	 "since": "2026-12-01T10:00:00Z", "mode": "continuous", "connected": false, ...}
//
// The answer is 200 when OK and 503 otherwise (WriteHealth).
type Health struct {
	// OK is true when the daemon does its job now.
	OK bool `json:"ok"`
	// Status is "ok" when OK; otherwise one snake_case word for what is
	// wrong ("not_connected", "storage_stalled", "process_failed"…),
	// stable for scripts and alerts.
	Status string `json:"status"`
	// Reason says, for a person, what is wrong; empty when OK.
	Reason string `json:"reason,omitempty"`
	// Since is when the daemon entered Status, as its /healthz saw it
	// (HealthClock): to within the time between two requests, or its
	// start.
	Since time.Time `json:"since"`
}

// Fail marks h not OK with a status word and a reason.
func (h *Health) Fail(status, reason string) {
	h.OK, h.Status, h.Reason = false, status, reason
}

// Healthy returns the Health of a daemon that does its job.
func Healthy() Health { return Health{OK: true, Status: StatusOK} }

// HealthClock stamps a daemon's Health with the time its Status last
// changed. It is safe for concurrent use; the zero value is not: use
// NewHealthClock.
type HealthClock struct {
	mu     sync.Mutex
	status string
	since  time.Time
}

// NewHealthClock returns a clock whose first status dates from now (the
// daemon's start).
func NewHealthClock() *HealthClock { return &HealthClock{since: time.Now()} }

// Stamp sets h.Since: the time h.Status was first stamped since it last
// changed (the daemon's start for the first status).
func (c *HealthClock) Stamp(h *Health) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status != "" && c.status != h.Status {
		c.since = time.Now()
	}
	c.status = h.Status
	h.Since = c.since.UTC()
}

// WriteHealth answers a /healthz request with body, a daemon's health
// (embedding Health): 200 when ok, else 503.
func WriteHealth(w http.ResponseWriter, ok bool, body any) {
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
