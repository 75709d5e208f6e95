package streamer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/daemonrun"
	"github.com/framehub/framehub/internal/httpserve"
)

// Streamer is the framehub-streamer program: it subscribes to the H.264
// stream of each camera's producer and serves it over RTSP (see the package
// documentation).
type Streamer struct {
	o    Config
	log  *slog.Logger
	cams []*camera  // Config.cameras() order
	pub  *publisher // nil without -publish

	health              *admin.HealthClock
	ready               chan struct{}
	rtspAddr, adminAddr string
	udpAddr             string
}

// New checks o and prepares a streamer; Run starts it.
func New(o Config, log *slog.Logger) (*Streamer, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("streamer options: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	st := &Streamer{o: o, log: log, health: admin.NewHealthClock(), ready: make(chan struct{})}
	for _, c := range st.o.cameras() {
		clog := log
		if len(st.o.Cameras) > 0 {
			clog = log.With("camera", c.Name)
		}
		src := newSource(&st.o, c.Socket, clog)
		src.hub = newHub(o.GOPCache, src.keys.Request)
		st.cams = append(st.cams, &camera{name: c.Name, socket: c.Socket, hub: src.hub, src: src})
	}
	if o.Publish != "" {
		st.pub = newPublisher(&st.o, log, st.cams[0].hub)
	}
	return st, nil
}

// camera is one producer the streamer serves, at rtsp://RTSPAddr/<name>:
// its subscription (src) and the hub that fans its access units out to
// the camera's viewers.
type camera struct {
	name, socket string
	hub          *hub
	src          *source
}

// Ready is closed once Run has bound its listeners and serves.
func (st *Streamer) Ready() <-chan struct{} { return st.ready }

// RTSPAddr returns the RTSP listen address (host:port), once Ready.
func (st *Streamer) RTSPAddr() string { return st.rtspAddr }

// URL returns the RTSP URL of the first camera's stream, once Ready.
func (st *Streamer) URL() string { return st.CameraURL(st.cams[0].name) }

// CameraURL returns the RTSP URL of the named camera's stream, once Ready.
func (st *Streamer) CameraURL(name string) string { return "rtsp://" + st.rtspAddr + "/" + name }

// AdminAddr returns the HTTP address of /metrics and /healthz ("" when
// disabled), once Ready.
func (st *Streamer) AdminAddr() string { return st.adminAddr }

// UDPAddr returns the UDP address RTP is sent from ("" when UDP is off),
// once Ready.
func (st *Streamer) UDPAddr() string { return st.udpAddr }

// Run serves until ctx is done, then stops everything and returns nil; or
// returns the error that made it stop (a listener could not be bound, a
// server failed). The producer being away is not an error: the streamer
// waits for it. Run may be called once.
func (st *Streamer) Run(ctx context.Context) error {
	tcp, err := net.Listen("tcp", st.o.RTSPAddr)
	if err != nil {
		return fmt.Errorf("rtsp listen on %s: %w", st.o.RTSPAddr, err)
	}
	var udp *udpPair
	if st.o.UDPRTPAddr != "" {
		if udp, err = listenUDPPair(st.o.UDPRTPAddr); err != nil {
			_ = tcp.Close()
			return err
		}
	}
	var adminLn net.Listener
	if st.o.Admin != "" {
		if adminLn, err = net.Listen("tcp", st.o.Admin); err != nil {
			_ = tcp.Close()
			udp.close()
			return fmt.Errorf("admin listen on %s: %w", st.o.Admin, err)
		}
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rs := newRTSPServer(rctx, &st.o, st.log, st.cams, tcp, udp)
	if err := rs.start(); err != nil {
		_ = tcp.Close()
		udp.close()
		if adminLn != nil {
			_ = adminLn.Close()
		}
		return err
	}
	st.rtspAddr = tcp.Addr().String()
	if udp != nil {
		st.udpAddr = udp.rtp.LocalAddr().String()
	}

	actors := []daemonrun.Actor{{Name: "rtsp server", Run: rs.run}}
	for _, c := range st.cams {
		actors = append(actors,
			daemonrun.Actor{Name: "producer subscription of camera " + c.name, Run: c.src.run},
			daemonrun.Actor{Name: "keyframe requests of camera " + c.name, Run: c.src.keys.Run})
	}
	if st.pub != nil {
		actors = append(actors, daemonrun.Actor{Name: "publisher", Run: st.pub.run})
	}
	if adminLn != nil {
		st.adminAddr = adminLn.Addr().String()
		// Only open endpoints: the guard checks Host and Origin, no token.
		hs := &http.Server{Handler: admin.HostGuard(st.o.Admin).Wrap(st.adminHandler()), ReadHeaderTimeout: 5 * time.Second}
		actors = append(actors, daemonrun.Actor{Name: "admin http", Run: func(ctx context.Context) error {
			// A request cut short by the end of the grace is no failure.
			if err, _ := httpserve.Serve(ctx, hs, adminLn, 2*time.Second); err != nil {
				return fmt.Errorf("admin http on %s: %w", st.adminAddr, err)
			}
			return nil
		}})
	}
	for _, c := range st.cams {
		st.log.Info("streamer serving", "url", st.CameraURL(c.name), "udp", st.udpAddr, "admin", st.adminAddr, "socket", c.socket,
			"stream", st.o.Stream, "publish", redact(st.o.Publish))
	}
	close(st.ready)
	return daemonrun.RunActors(rctx, st.log, actors...)
}

// adminHandler serves /metrics and /healthz (behind admin.HostGuard, as
// every daemon's open endpoints).
func (st *Streamer) adminHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(st), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		admin.BuildInfo("framehub-streamer"))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		h := st.Health()
		admin.WriteHealth(w, h.OK, h)
	})
	return mux
}

// Health is the streamer's /healthz: the keys of every framehub daemon
// (admin.Health: ok, status, reason, since), then the streamer's. It is
// not OK until the first frame came from every camera's producer
// ("no_frames") and whenever none came from one for HealthStale
// ("stale"): it measures the streams end to end, not just the process.
// URL, Producer and LastFrameAgeSeconds are the first camera's; Cameras
// has each one's.
type Health struct {
	admin.Health
	URL      string `json:"url"`
	Producer string `json:"producer"` // the producer's socket
	Stream   string `json:"stream"`
	Sinks    int    `json:"sinks"` // viewers and the publisher
	// LastFrameAgeSeconds is the time since the last frame from the
	// producer; absent before the first.
	LastFrameAgeSeconds *float64       `json:"last_frame_age_seconds,omitempty"`
	Cameras             []CameraHealth `json:"cameras"`
}

// CameraHealth is one camera's part of Health.
type CameraHealth struct {
	Name                string   `json:"name"`
	URL                 string   `json:"url"`
	Producer            string   `json:"producer"`
	Sinks               int      `json:"sinks"`
	LastFrameAgeSeconds *float64 `json:"last_frame_age_seconds,omitempty"`
}

// Health reports whether every camera's stream is live end to end.
func (st *Streamer) Health() Health {
	h := Health{Health: admin.Healthy(), Stream: st.o.Stream}
	for i, c := range st.cams {
		_, sinks := c.hub.totals()
		ch := CameraHealth{Name: c.name, URL: st.CameraURL(c.name), Producer: c.socket, Sinks: sinks}
		who := "the producer"
		if len(st.cams) > 1 {
			who = fmt.Sprintf("camera %s's producer", c.name)
		}
		last := c.hub.lastFrame()
		if last.IsZero() {
			if h.OK {
				h.Fail("no_frames", fmt.Sprintf("no frame from %s yet (socket %s, stream %q)", who, c.socket, st.o.Stream))
			}
		} else {
			age := time.Since(last)
			secs := age.Seconds()
			ch.LastFrameAgeSeconds = &secs
			if age > st.o.HealthStale && h.OK {
				h.Fail("stale", fmt.Sprintf("no frame from %s for %v (socket %s)", who, age.Round(time.Millisecond), c.socket))
			}
		}
		h.Sinks += sinks
		if i == 0 {
			h.URL, h.Producer, h.LastFrameAgeSeconds = ch.URL, ch.Producer, ch.LastFrameAgeSeconds
		}
		h.Cameras = append(h.Cameras, ch)
	}
	st.health.Stamp(&h.Health)
	return h
}

// udpPair is the RTP and RTCP sockets of the UDP transport.
type udpPair struct {
	rtp, rtcp *net.UDPConn
}

func (u *udpPair) close() {
	if u != nil {
		_ = u.rtp.Close()
		_ = u.rtcp.Close()
	}
}

// listenUDPPair binds RTP on addr's (even) port and RTCP on the next one.
// Port 0 picks a free pair: the kernel's choice of an even port whose
// successor is free too.
func listenUDPPair(addr string) (*udpPair, error) {
	host, port, err := splitPort(addr)
	if err != nil {
		return nil, fmt.Errorf("udp-rtp-addr: %w", err)
	}
	bind := func(p int) (*net.UDPConn, error) {
		a, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			return nil, err
		}
		return net.ListenUDP("udp", a)
	}
	if port != 0 {
		rtp, err := bind(port)
		if err != nil {
			return nil, fmt.Errorf("rtp listen on %s: %w", addr, err)
		}
		rtcp, err := bind(port + 1)
		if err != nil {
			_ = rtp.Close()
			return nil, fmt.Errorf("rtcp listen on port %d: %w", port+1, err)
		}
		return &udpPair{rtp: rtp, rtcp: rtcp}, nil
	}
	lastErr := errors.New("the kernel offered only odd ports")
	for range 100 {
		rtp, err := bind(0)
		if err != nil {
			return nil, fmt.Errorf("rtp listen on %s: %w", addr, err)
		}
		p := rtp.LocalAddr().(*net.UDPAddr).Port
		if p%2 != 0 || p == 65534 {
			_ = rtp.Close()
			continue
		}
		rtcp, err := bind(p + 1)
		if err != nil {
			lastErr = err
			_ = rtp.Close()
			continue
		}
		return &udpPair{rtp: rtp, rtcp: rtcp}, nil
	}
	return nil, fmt.Errorf("no free even/odd UDP port pair on %s after 100 tries: %w", host, lastErr)
}
