package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/clock"
)

// eventWait bounds how long POST /record/event waits for a first keyframe
// when none is buffered yet (just started, or the producer is away).
const eventWait = 5 * time.Second

// Handler returns the admin HTTP API:
//
//	POST /record/event  record an event (event mode). Optional JSON body
//	                    {"pre_seconds": 5, "post_seconds": 10, "label": "door"}.
//	                    200 {"file", "start", "pre_seconds", "post_seconds", "extended"};
//	                    400 bad body, 409 not in event mode, 503 no video yet.
//	GET  /healthz       200 when recording keeps up, else 503; JSON Health.
//	GET  /metrics       Prometheus metrics.
//
// Errors are JSON {"error": "..."}.
func (r *Recorder) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /record/event", r.handleEvent)
	mux.HandleFunc("GET /healthz", r.handleHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.m.reg, promhttp.HandlerOpts{Registry: r.m.reg}))
	return mux
}

func (r *Recorder) handleEvent(w http.ResponseWriter, req *http.Request) {
	var ev EventRequest
	body, err := io.ReadAll(io.LimitReader(req.Body, 4096))
	if err == nil && len(body) > 0 {
		err = json.Unmarshal(body, &ev)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), eventWait)
	defer cancel()
	resp, err := r.Event(ctx, ev)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, resp)
	case errors.Is(err, ErrNotEventMode):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrNoVideo):
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
}

// Health is the recorder's health, as GET /healthz reports it: the keys
// of every framehub daemon (admin.Health: ok, status, reason, since), then
// the recorder's. It is not OK when access units have waited more than 3
// fragment durations to be made durable ("storage_stalled": storage
// stalled or failing), when nothing was written for that long while
// frames arrive in continuous mode ("not_writing"), and when it is not
// subscribed to the producer ("not_connected": the reason says why the
// last attempt failed, a missing socket, a permission).
type Health struct {
	admin.Health
	Mode string `json:"mode"`
	// Connected: subscribed to the producer now.
	Connected bool   `json:"connected"`
	Producer  string `json:"producer"` // the producer's socket
	// Segment is the file being written ("" between events).
	Segment string `json:"segment,omitempty"`
	// LastWrite is when a fragment was last written and fsync'ed.
	LastWrite *time.Time `json:"last_write,omitempty"`
	// PendingSeconds is the age of the oldest access unit not yet durable.
	PendingSeconds float64 `json:"pending_seconds"`
	QueueBytes     int64   `json:"queue_bytes"`
}

// Health reports whether recording keeps up.
func (r *Recorder) Health() Health {
	now := clock.Mono()
	qb, _, oldest := r.q.depth()
	if p := r.st.pendingSince.Load(); p != 0 && (oldest == 0 || p < oldest) {
		oldest = p
	}
	h := Health{Health: admin.Healthy(), Mode: r.cfg.Mode, Connected: r.st.connected.Load(), Producer: r.cfg.Producer,
		Segment: r.st.currentSegment(), QueueBytes: qb}
	limit := 3 * r.cfg.Fragment
	if lw := r.st.lastWrite.Load(); lw != 0 {
		t := time.Unix(0, lw).UTC()
		h.LastWrite = &t
	}
	if oldest != 0 {
		h.PendingSeconds = time.Duration(now - oldest).Seconds()
		if time.Duration(now-oldest) > limit {
			h.Fail("storage_stalled", "access units wait longer than 3 fragments to be written: storage stalled or failing")
		}
	}
	// Continuous mode: frames arrive, yet nothing became durable (every
	// write fails, or no keyframe to start at) since the last write or the
	// first frame.
	if lf := r.st.lastFrame.Load(); h.OK && r.cfg.Mode == ModeContinuous && lf != 0 && time.Duration(now-lf) < limit {
		since := r.st.lastWriteMono.Load()
		if since == 0 {
			since = r.st.firstFrame.Load()
		}
		if time.Duration(now-since) > limit {
			h.Fail("not_writing", "frames arrive but nothing was written for 3 fragments")
		}
	}
	if h.OK && !h.Connected {
		why := r.st.lastDialErr()
		if why == "" {
			why = "connecting"
		}
		h.Fail("not_connected", fmt.Sprintf("not subscribed to the producer at %s, so recording nothing: %s", r.cfg.Producer, why))
	}
	r.health.Stamp(&h.Health)
	return h
}

func (r *Recorder) handleHealth(w http.ResponseWriter, _ *http.Request) {
	h := r.Health()
	admin.WriteHealth(w, h.OK, h)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
