package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/httpserve"
)

// DefaultAdminAddr is the admin API's default address.
const DefaultAdminAddr = "127.0.0.1:7704"

// maxStatusWait bounds GET /snapshot/{id}?wait=.
const maxStatusWait = 60 * time.Second

// Handler returns the admin HTTP API, with no access control of its own:
// the daemon serves it behind an admin.Guard, so that everything but
// /metrics and /healthz needs the admin token.
//
//	POST /snapshot        take a snapshot. Parameters (query or form): format=jpeg|json,
//	                      quality=1..100, scale=W or width=W&height=H, after=CLOCK_MONOTONIC ns,
//	                      encoder=go|gst. Answers the JPEG (format=jpeg, or an Accept header
//	                      naming image/jpeg) with the status in X-Snapshot-Status, else the
//	                      status as JSON; durable is false: the file is written afterwards.
//	GET  /snapshot/{id}   the status; ?wait=5s waits until it is durable or failed.
//	GET  /healthz         200 when subscribed to the producer and storage works, else 503.
//	GET  /metrics         Prometheus metrics.
//
// Errors are JSON {"error": "...", "reason": "..."}: 400 invalid request, 404
// unknown id, 503 storage busy / not connected / stopping, 504 no frame, 500
// encoder failure.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /snapshot", s.handleTake)
	mux.HandleFunc("GET /snapshot/{id}", s.handleStatus)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{Registry: s.m.reg}))
	return mux
}

func (s *Service) handleTake(w http.ResponseWriter, r *http.Request) {
	var req Request
	var err error
	intParam := func(name string, dst *int) {
		if v := r.FormValue(name); v != "" && err == nil {
			if *dst, err = strconv.Atoi(v); err != nil {
				err = fmt.Errorf("%w: %s=%q is not an integer", ErrInvalid, name, v)
			}
		}
	}
	intParam("quality", &req.Quality)
	intParam("scale", &req.Scale)
	intParam("width", &req.Width)
	intParam("height", &req.Height)
	if v := r.FormValue("after"); v != "" && err == nil {
		if req.After, err = strconv.ParseInt(v, 10, 64); err != nil {
			err = fmt.Errorf("%w: after=%q is not a CLOCK_MONOTONIC time in ns", ErrInvalid, v)
		}
	}
	req.Encoder = r.FormValue("encoder")
	format := r.FormValue("format")
	if format != "" && format != "jpeg" && format != "json" {
		err = fmt.Errorf("%w: format=%q (valid: jpeg, json)", ErrInvalid, format)
	}
	if err != nil {
		s.m.requests.WithLabelValues(resultInvalid).Inc()
		writeError(w, err)
		return
	}
	wantJPEG := format == "jpeg" || (format == "" && acceptsJPEG(r.Header.Values("Accept")))
	st, data, err := s.Take(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	h := w.Header()
	h.Set("Location", "/snapshot/"+st.ID)
	if !wantJPEG {
		writeJSON(w, http.StatusOK, st)
		return
	}
	js, _ := json.Marshal(st)
	h.Set("X-Snapshot-Status", string(js))
	h.Set("X-Snapshot-Id", st.ID)
	h.Set("X-Snapshot-Path", st.Path)
	h.Set("Content-Type", "image/jpeg")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// acceptsJPEG reports whether an Accept header names image/jpeg (or
// image/*) with a non-zero quality.
func acceptsJPEG(values []string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || (mt != "image/jpeg" && mt != "image/*") {
				continue
			}
			if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q == 0 {
				continue
			}
			return true
		}
	}
	return false
}

func (s *Service) handleStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var st Status
	var err error
	if v := r.URL.Query().Get("wait"); v != "" {
		d, perr := time.ParseDuration(v)
		if perr != nil || d < 0 || d > maxStatusWait {
			writeError(w, fmt.Errorf("%w: wait=%q must be a duration in 0..%v", ErrInvalid, v, maxStatusWait))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		st, err = s.Wait(ctx, id)
	} else {
		st, err = s.Status(id)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Service) handleHealth(w http.ResponseWriter, _ *http.Request) {
	h := s.Health()
	admin.WriteHealth(w, h.OK, h)
}

// apiError is the JSON body of an error answer.
type apiError struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

// errorCodes maps the package's errors to HTTP status codes and short names.
func errorCode(err error) (int, string) {
	switch {
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, "invalid request"
	case errors.Is(err, ErrUnknown):
		return http.StatusNotFound, "unknown snapshot"
	case errors.Is(err, ErrBusy):
		return http.StatusServiceUnavailable, "storage busy"
	case errors.Is(err, ErrNotConnected):
		return http.StatusServiceUnavailable, "not connected"
	case errors.Is(err, ErrStopping):
		return http.StatusServiceUnavailable, "stopping"
	case errors.Is(err, ErrNoFrame):
		return http.StatusGatewayTimeout, "no frame"
	}
	return http.StatusInternalServerError, "snapshot failed"
}

func writeError(w http.ResponseWriter, err error) {
	code, short := errorCode(err)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, apiError{Error: short, Reason: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Listen listens on an admin address: "unix:/path" for a Unix socket (a
// stale socket file is replaced; a live one is an error; the new one has
// mode 0600), else a TCP host:port.
func Listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("snapshot: admin address %s: %w", addr, err)
		}
		return ln, nil
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() == fs.ModeSocket {
		c, derr := net.DialTimeout("unix", path, time.Second)
		if derr == nil {
			c.Close()
			return nil, fmt.Errorf("snapshot: admin address %s: in use by a live process: %w", addr, syscall.EADDRINUSE)
		}
		if errors.Is(derr, syscall.ECONNREFUSED) {
			_ = os.Remove(path) // stale, from a process that died
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("snapshot: admin address %s: %w", addr, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("snapshot: admin address %s: %w", addr, err)
	}
	return ln, nil
}

// Serve answers h, the admin API (Handler, behind the daemon's
// admin.Guard), on ln until ctx is done, then stops accepting and waits (at
// most 5 s) for the requests in progress. It closes ln.
func (s *Service) Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.log.Info("admin API listening", "addr", addrString(ln))
	serveErr, err := httpserve.Serve(ctx, srv, ln, 5*time.Second)
	switch {
	case err != nil:
		return fmt.Errorf("snapshot: admin API shutdown: %w", err)
	case serveErr != nil:
		return fmt.Errorf("snapshot: admin API: %w", serveErr)
	}
	return nil
}

// addrString renders a listener's address as Listen accepts it.
func addrString(ln net.Listener) string {
	if ln.Addr().Network() == "unix" {
		return "unix:" + ln.Addr().String()
	}
	return ln.Addr().String()
}
