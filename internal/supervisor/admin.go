package supervisor

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/framehub/framehub/internal/admin"
)

// logRing keeps a child's last lines, for /logs and framehubctl logs.
type logRing struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
	added uint64 // lines added in all
}

func newLogRing(n int) *logRing { return &logRing{lines: make([]string, n)} }

func (r *logRing) add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines[r.next] = line
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
	r.added++
}

func (r *logRing) last(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastLocked(n)
}

func (r *logRing) lastLocked(n int) []string {
	var all []string
	if r.full {
		all = append(all, r.lines[r.next:]...)
	}
	all = append(all, r.lines[:r.next]...)
	if n > 0 && n < len(all) {
		all = all[len(all)-n:]
	}
	return all
}

// mark returns a position for since: the lines added so far.
func (r *logRing) mark() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.added
}

// since returns the lines added after mark that the ring still holds.
func (r *logRing) since(mark uint64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.added - mark
	if n == 0 {
		return nil
	}
	return r.lastLocked(int(min(n, uint64(len(r.lines)))))
}

type metrics struct {
	reg        *prometheus.Registry
	up         *prometheus.GaugeVec
	restarts   *prometheus.CounterVec
	crashes    *prometheus.CounterVec
	exitCode   *prometheus.GaugeVec
	exitTime   *prometheus.GaugeVec
	reloads    *prometheus.CounterVec
	reloadedOK prometheus.Gauge
}

var states = []State{StateWaiting, StateStarting, StateReady, StateBackoff, StateStopped, StateFailed}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "framehub_supervisor_child_state",
			Help: "1 for the state each supervised process is in."}, []string{"name", "state"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "framehub_supervisor_restarts_total",
			Help: "Restarts of a supervised process (after an exit, or because a reload changed its entry)."}, []string{"name"}),
		crashes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "framehub_supervisor_crashes_total",
			Help: "Exits of a supervised process that the supervisor did not ask for."}, []string{"name"}),
		exitCode: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "framehub_supervisor_last_exit_code",
			Help: "Exit status of a process's last run: the status, or 128 + the signal that killed it (-1 unknown)."}, []string{"name"}),
		exitTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "framehub_supervisor_last_exit_timestamp_seconds",
			Help: "When a process's last run ended, Unix time in seconds."}, []string{"name"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "framehub_supervisor_reloads_total",
			Help: "Config reloads (SIGHUP), by result: ok, or failed (the new config was refused and the group kept running)."}, []string{"result"}),
		reloadedOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "framehub_supervisor_config_last_reload_successful",
			Help: "1 when the config in use is the file's (the last reload succeeded, or there was none), 0 when the last reload was refused."}),
	}
	m.reloadedOK.Set(1)
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("failed")
	m.reg.MustRegister(m.up, m.restarts, m.crashes, m.exitCode, m.exitTime, m.reloads, m.reloadedOK, admin.BuildInfo("framehub-supervisor"))
	return m
}

// add starts the series of a process (counters at 0: an absent series
// reads as "no data", not "no crash").
func (m *metrics) add(name string) {
	m.restarts.WithLabelValues(name)
	m.crashes.WithLabelValues(name)
	m.state(name, StateWaiting)
}

// remove drops the series of a process a reload removed.
func (m *metrics) remove(name string) {
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{m.up, m.restarts, m.crashes, m.exitCode, m.exitTime} {
		v.DeletePartialMatch(prometheus.Labels{"name": name})
	}
}

func (m *metrics) state(name string, s State) {
	for _, st := range states {
		v := 0.0
		if st == s {
			v = 1
		}
		m.up.WithLabelValues(name, string(st)).Set(v)
	}
}

// exited records how a run of name ended (err from exec.Cmd.Wait).
func (m *metrics) exited(name string, err error) {
	m.exitCode.WithLabelValues(name).Set(float64(exitCode(err)))
	m.exitTime.WithLabelValues(name).SetToCurrentTime()
}

// reloaded counts a reload.
func (m *metrics) reloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
		m.reloadedOK.Set(1)
	} else {
		m.reloads.WithLabelValues("failed").Inc()
		m.reloadedOK.Set(0)
	}
}

// StatusResponse is the body of GET /status.
type StatusResponse struct {
	Started   time.Time     `json:"started"`
	Processes []ChildStatus `json:"processes"`
	// Cameras are the group's cameras, in config order (none in a config
	// without cameras).
	Cameras []CameraStatus `json:"cameras"`
}

// Health is the supervisor's /healthz: not OK ("process_failed") while it
// has given up on a process.
type Health struct {
	admin.Health
	Processes map[string]State `json:"processes"` // each process's state
}

// Health reports the group's health.
func (s *Supervisor) Health() Health {
	h := Health{Health: admin.Healthy(), Processes: map[string]State{}}
	var failed []string
	for _, c := range s.Status() {
		h.Processes[c.Name] = c.State
		if c.State == StateFailed {
			failed = append(failed, fmt.Sprintf("%s failed: %s", c.Name, c.Error))
		}
	}
	if len(failed) > 0 {
		h.Fail("process_failed", strings.Join(failed, "; "))
	}
	s.health.Stamp(&h.Health)
	return h
}

// Handler serves the admin endpoints: GET /status (JSON), GET
// /logs?name=N&lines=K (text), GET /metrics (Prometheus), GET /healthz
// (admin.Health: 200 unless a process was given up on).
func (s *Supervisor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		started := s.start
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(StatusResponse{Started: started, Processes: s.Status(), Cameras: cameraStatus(s.Config())})
	})
	mux.HandleFunc("GET /logs", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("lines"))
		lines, err := s.Logs(r.URL.Query().Get("name"), n)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		h := s.Health()
		admin.WriteHealth(w, h.OK, h)
	})
	return mux
}
