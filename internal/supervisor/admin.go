package supervisor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// logRing keeps a child's last lines, for /logs and framehubctl logs.
type logRing struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
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
}

func (r *logRing) last(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
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

// lineWriter prefixes each line a child writes with its name, copies it to
// the supervisor's output and keeps it in the child's ring.
type lineWriter struct {
	name string
	ring *logRing
	out  io.Writer
	mu   sync.Mutex
	buf  []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		w.ring.add(line)
		fmt.Fprintf(w.out, "%s | %s\n", w.name, line)
	}
	if len(w.buf) > 64<<10 { // a child writing without newlines
		w.ring.add(string(w.buf))
		fmt.Fprintf(w.out, "%s | %s\n", w.name, w.buf)
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

type metrics struct {
	reg      *prometheus.Registry
	up       *prometheus.GaugeVec
	restarts *prometheus.CounterVec
	crashes  *prometheus.CounterVec
}

var states = []State{StateWaiting, StateStarting, StateReady, StateBackoff, StateStopped, StateFailed}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "framehub_supervisor_child_state",
			Help: "1 for the state each supervised process is in."}, []string{"name", "state"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "framehub_supervisor_restarts_total",
			Help: "Restarts of a supervised process."}, []string{"name"}),
		crashes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "framehub_supervisor_crashes_total",
			Help: "Unexpected exits of a supervised process."}, []string{"name"}),
	}
	m.reg.MustRegister(m.up, m.restarts, m.crashes)
	return m
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

// StatusResponse is the body of GET /status.
type StatusResponse struct {
	Started   time.Time     `json:"started"`
	Processes []ChildStatus `json:"processes"`
}

// Handler serves the admin endpoints: GET /status (JSON), GET
// /logs?name=N&lines=K (text), GET /metrics (Prometheus), GET /healthz (200
// unless a process was given up on).
func (s *Supervisor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(StatusResponse{Started: s.start, Processes: s.Status()})
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
		for _, c := range s.Status() {
			if c.State == StateFailed {
				http.Error(w, fmt.Sprintf("%s failed: %s", c.Name, c.Error), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}
