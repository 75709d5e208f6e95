package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/daemonrun"
	"github.com/framehub/framehub/internal/httpserve"
)

// Server is the web daemon: its cameras' live sides and its HTTP
// endpoints. New makes it, Run runs the cameras, Handler serves.
type Server struct {
	o      Config
	log    *slog.Logger
	cams   map[string]*camera
	order  []string // camera names as configured
	clips  *clipCache
	webrtc *sessions
	health *admin.HealthClock
}

// New returns a server of cfg; Run must run for live video.
func New(cfg Config) (*Server, error) {
	if err := cfg.fill(); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	api, err := newWebRTCAPI()
	if err != nil {
		return nil, err
	}
	s := &Server{o: cfg, log: cfg.Logger, cams: map[string]*camera{}, clips: &clipCache{ttl: time.Minute, max: 4},
		webrtc: &sessions{api: api, byID: map[string]*whepSession{}}, health: admin.NewHealthClock()}
	for _, c := range cfg.Cameras {
		s.cams[c.Name] = newCamera(c, &s.o)
		s.order = append(s.order, c.Name)
	}
	return s, nil
}

// Run runs every camera's subscription until ctx is done, then ends the
// live sessions and returns nil.
func (s *Server) Run(ctx context.Context) error {
	defer s.webrtc.closeAll()
	defer func() {
		for _, c := range s.cams {
			if c.adm != nil {
				c.adm.close()
			}
		}
	}()
	var actors []daemonrun.Actor
	for _, name := range s.order {
		c := s.cams[name]
		actors = append(actors,
			daemonrun.Actor{Name: "camera " + name, Run: c.run},
			daemonrun.Actor{Name: "camera " + name + " keyframes", Run: c.keys.Run},
			daemonrun.Actor{Name: "camera " + name + " HLS", Run: c.hls.run})
	}
	return daemonrun.RunActors(ctx, s.log, actors...)
}

// Handler returns the HTTP endpoints behind guard: the views (page, live
// video, snapshots, recordings) with guard.WrapView, which needs no token
// but checks Host (and Origin for WHEP offers); state-changing requests
// (DELETE of a WHEP session) with guard.Wrap, which needs the admin token.
func (s *Server) Handler(guard *admin.Guard) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /list", s.handleList)
	mux.HandleFunc("GET /get", s.handleGet)
	mux.HandleFunc("GET /api/cameras", s.handleCameras)
	pageRoutes(mux)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.Handle("GET /metrics", newMetricsHandler(s))
	for _, name := range s.order {
		s.cameraRoutes(mux, guard, s.cams[name])
	}
	return guard.WrapView(mux)
}

// cameraRoutes adds camera c's endpoints, under /<name>/.
func (s *Server) cameraRoutes(mux *http.ServeMux, guard *admin.Guard, c *camera) {
	p := "/" + c.cfg.Name
	mux.HandleFunc("GET "+p+"/snapshot.jpg", s.handleSnapshot(c))
	mux.HandleFunc("GET "+p+"/snapshots/{$}", s.handleStoredList(c))
	mux.HandleFunc("GET "+p+"/snapshots/{file}", s.handleStored(c))
	mux.HandleFunc("POST "+p+"/whep", s.handleWHEP(c))
	mux.Handle("DELETE "+p+"/whep/{id}", guard.Wrap(s.handleWHEPDelete(c)))
	mux.HandleFunc("PATCH "+p+"/whep/{id}", handleWHEPPatch)
	mux.HandleFunc("GET "+p+"/{file}", func(w http.ResponseWriter, r *http.Request) {
		if f := r.PathValue("file"); !strings.HasSuffix(f, ".m3u8") && !strings.HasSuffix(f, ".mp4") {
			writeError(w, httpError{http.StatusNotFound, fmt.Sprintf("camera %q has no %q", c.cfg.Name, f)})
			return
		}
		c.hls.serve(w, r)
	})
}

// Health is GET /healthz's answer: admin.Health (OK while every camera is
// subscribed to its producer and its frames arrive), and each camera's
// status.
type Health struct {
	admin.Health
	Cameras []CameraStatus `json:"cameras"`
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	h := Health{Health: admin.Healthy()}
	for _, name := range s.order {
		st := s.cams[name].status()
		h.Cameras = append(h.Cameras, st)
		switch {
		case !h.OK:
		case !st.Connected:
			h.Fail("not_connected", fmt.Sprintf("camera %q is not subscribed to its producer at %s", name, s.cams[name].cfg.Socket))
		case st.FPS == 0:
			h.Fail("no_frames", fmt.Sprintf("camera %q received no frame in the last 2 s", name))
		}
	}
	s.health.Stamp(&h.Health)
	admin.WriteHealth(w, h.OK, h)
}

// CamerasJSON is GET /api/cameras' answer.
type CamerasJSON struct {
	Cameras []CameraStatus `json:"cameras"`
}

func (s *Server) handleCameras(w http.ResponseWriter, r *http.Request) {
	out := CamerasJSON{Cameras: []CameraStatus{}}
	for _, name := range s.order {
		c := s.cams[name]
		st := c.status()
		st.Recording = recordingState(c.cfg.Recordings)
		if c.adm != nil {
			cons, err := c.adm.consumers(r.Context())
			if err != nil {
				st.ConsumersError = err.Error()
			}
			st.Consumers = cons
		}
		out.Cameras = append(out.Cameras, st)
	}
	writeJSON(w, http.StatusOK, out)
}

// Serve answers h on ln until ctx is done, then stops accepting and waits
// (at most 5 s) for the requests in progress. It closes ln. Long-lived
// responses (HLS's blocking playlist reloads) end with ctx.
func Serve(ctx context.Context, log *slog.Logger, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("web server listening", "url", "http://"+ln.Addr().String()+"/")
	serveErr, err := httpserve.Serve(ctx, srv, ln, 5*time.Second)
	switch {
	case err != nil:
		return fmt.Errorf("web: shutdown: %w", err)
	case serveErr != nil:
		return fmt.Errorf("web: serve %s: %w", ln.Addr(), serveErr)
	}
	return nil
}

// httpError is an error answered with its status code.
type httpError struct {
	code int
	msg  string
}

func (e httpError) Error() string { return e.msg }

// writeError answers err as JSON {"error": ...}: 400 for a bad parameter,
// an httpError's code, else 500.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var pe *paramError
	var he httpError
	switch {
	case errors.As(err, &pe):
		code = http.StatusBadRequest
	case errors.As(err, &he):
		code = he.code
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
