package admin

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// StatusOK is Health.Status of a healthy daemon.
const StatusOK = "ok"

// Health is the body of every framehub daemon's GET /healthz: the same
// four keys everywhere, so that one probe, script or dashboard reads them
// all, and the daemon's own facts under "details". The answer is 200 when
// OK and 503 otherwise (WriteHealth).
//
//	{"ok": false, "status": "not_connected", "reason": "cannot reach the producer at /run/framehub/framehub.sock: permission denied ...",
//	 "since": "2026-12-01T10:00:00Z", "details": {...}}
type Health struct {
	// OK is true when the daemon does its job now.
	OK bool `json:"ok"`
	// Status is "ok" when OK; otherwise one snake_case word for what is
	// wrong ("not_connected", "storage_stalled", "process_failed"…),
	// stable for scripts and alerts.
	Status string `json:"status"`
	// Reason says, for a person, what is wrong and what it was doing;
	// empty when OK.
	Reason string `json:"reason,omitempty"`
	// Since is when the daemon entered Status, as its /healthz saw it
	// (HealthClock): to within the time between two requests, or its
	// start.
	Since time.Time `json:"since"`
	// Details are the daemon's own facts (its queue, its producer, its
	// processes…), snake_case keys, durations in seconds.
	Details any `json:"details,omitempty"`
}

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

// WriteHealth answers a /healthz request with h: 200 when h.OK, else 503.
func WriteHealth(w http.ResponseWriter, h Health) {
	code := http.StatusOK
	if !h.OK {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(h)
}
