package streamer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
)

// describeWait bounds how long a DESCRIBE waits for the stream's parameter
// sets when the streamer has not seen a keyframe yet (just started, or the
// producer is not up): the SDP must carry them, and the first keyframe
// normally arrives within a keyframe request's round trip.
const describeWait = 5 * time.Second

// writeQueueSize is each RTSP session's queue of outgoing packets (a power
// of two, as gortsplib requires). A keyframe of a 1080p stream is ~100
// packets; 1024 lets a viewer absorb a GOP-cache start and a short network
// stall before it loses packets and resynchronises at the next keyframe.
const writeQueueSize = 1024

// payloadType is the dynamic RTP payload type of the H.264 stream.
const payloadType = 96

// rtspServer serves the stream to RTSP viewers. Every viewer session gets
// its own gortsplib.ServerStream, fed by its own writer goroutine from its
// own queue (see hub), so that a viewer starts on a keyframe of its own and
// a slow one only loses its own frames.
type rtspServer struct {
	o      *Config
	log    *slog.Logger
	byPath map[string]*camera // the cameras, by their path (name)
	srv    *gortsplib.Server
	ctx    context.Context // ends the viewers' writers and DESCRIBE waits

	mu      sync.Mutex
	viewers map[*gortsplib.ServerSession]*viewer
	nextID  int
	wg      sync.WaitGroup // viewer writers
}

// viewer is one RTSP session that SETUP a stream.
type viewer struct {
	hub         *hub // its camera's
	sink        *sink
	stream      *gortsplib.ServerStream
	writeFailed atomic.Bool // gortsplib dropped a packet (session queue full)
	cancel      context.CancelFunc
	playing     bool   // PLAY accepted
	start       func() // starts the writer, once the PLAY response is out
}

// newRTSPServer prepares the gortsplib server on the listeners given (udp
// may be nil: TCP only).
func newRTSPServer(ctx context.Context, o *Config, log *slog.Logger, cams []*camera, tcp net.Listener, udp *udpPair) *rtspServer {
	r := &rtspServer{o: o, log: log, byPath: make(map[string]*camera, len(cams)), ctx: ctx, viewers: make(map[*gortsplib.ServerSession]*viewer)}
	for _, c := range cams {
		r.byPath[c.name] = c
	}
	r.srv = &gortsplib.Server{
		Handler:        r,
		RTSPAddress:    tcp.Addr().String(),
		WriteQueueSize: writeQueueSize,
		// The listeners are bound by the streamer beforehand, so that port 0
		// works and the addresses are known before the server runs.
		Listen: func(string, string) (net.Listener, error) { return tcp, nil },
	}
	if udp != nil {
		r.srv.UDPRTPAddress = udp.rtp.LocalAddr().String()
		r.srv.UDPRTCPAddress = udp.rtcp.LocalAddr().String()
		r.srv.ListenPacket = func(_, address string) (net.PacketConn, error) {
			if address == r.srv.UDPRTPAddress {
				return udp.rtp, nil
			}
			return udp.rtcp, nil
		}
	}
	return r
}

// start starts serving.
func (r *rtspServer) start() error {
	if err := r.srv.Start(); err != nil {
		return fmt.Errorf("rtsp server on %s: %w", r.srv.RTSPAddress, err)
	}
	return nil
}

// run serves until ctx is done, then closes the server; or returns the
// error that made it fail.
func (r *rtspServer) run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- r.srv.Wait() }()
	select {
	case err := <-done:
		r.close()
		return fmt.Errorf("rtsp server: %w", err)
	case <-ctx.Done():
		r.close()
		<-done // Wait returns once the server is closed
		return nil
	}
}

// close stops the server; every session is closed and every writer waited
// for.
func (r *rtspServer) close() {
	r.srv.Close() // closes every session: OnSessionClose ends its viewer
	r.mu.Lock()
	left := r.viewers
	r.viewers = make(map[*gortsplib.ServerSession]*viewer)
	r.mu.Unlock()
	for _, v := range left {
		r.endViewer(v)
	}
	r.wg.Wait()
}

// sdpOf is the SDP of a camera's stream with its current parameter
// sets.
func sdpOf(h *hub) *description.Session {
	sps, pps, _ := h.params()
	return sdpDescription(sps, pps)
}

func sdpDescription(sps, pps []byte) *description.Session {
	return &description.Session{
		Title: "framehub",
		Medias: []*description.Media{{
			Type: description.MediaTypeVideo,
			// The control URL gortsplib expects in SETUP (as it would
			// write it itself for a stream it describes).
			Control: "trackID=0",
			Formats: []format.Format{&format.H264{PayloadTyp: payloadType, PacketizationMode: 1, SPS: sps, PPS: pps}},
		}},
	}
}

// check authenticates a request and finds the camera of its path; it
// returns the camera, or the response to send instead of going on.
func (r *rtspServer) check(c *gortsplib.ServerConn, req *base.Request, path string) (*camera, *base.Response, error) {
	if r.o.User != "" && !c.VerifyCredentials(req, r.o.User, r.o.Pass) {
		// ErrServerAuth makes gortsplib ask for credentials (401 with
		// WWW-Authenticate) rather than drop the client.
		return nil, &base.Response{StatusCode: base.StatusUnauthorized}, liberrors.ErrServerAuth{}
	}
	cam := r.byPath[strings.Trim(path, "/")]
	if cam == nil {
		r.log.Debug("rtsp: unknown path", "path", path, "remote", c.NetConn().RemoteAddr())
		return nil, &base.Response{StatusCode: base.StatusNotFound}, nil
	}
	return cam, nil, nil
}

// OnDescribe answers with the SDP once the parameter sets are known.
func (r *rtspServer) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	cam, res, err := r.check(ctx.Conn, ctx.Request, ctx.Path)
	if res != nil {
		return res, nil, err
	}
	wctx, cancel := context.WithTimeout(r.ctx, describeWait)
	defer cancel()
	if err := cam.hub.waitParams(wctx); err != nil {
		r.log.Warn("rtsp: DESCRIBE refused: no H.264 parameter sets from the producer yet", "camera", cam.name, "waited", describeWait,
			"remote", ctx.Conn.NetConn().RemoteAddr())
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, nil
	}
	body, err := sdpOf(cam.hub).Marshal(false)
	if err != nil {
		return &base.Response{StatusCode: base.StatusInternalServerError}, nil, fmt.Errorf("marshal SDP: %w", err)
	}
	return &base.Response{StatusCode: base.StatusOK, Body: body}, nil, nil
}

// OnSetup gives the session its own stream.
func (r *rtspServer) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil, errors.New("this server does not accept published streams")
	}
	cam, res, err := r.check(ctx.Conn, ctx.Request, ctx.Path)
	if res != nil {
		return res, nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v := r.viewers[ctx.Session]; v != nil {
		return &base.Response{StatusCode: base.StatusOK}, v.stream, nil
	}
	if r.o.MaxViewers > 0 && len(r.viewers) >= r.o.MaxViewers {
		r.log.Warn("rtsp: viewer refused: too many viewers", "max_viewers", r.o.MaxViewers, "remote", ctx.Conn.NetConn().RemoteAddr())
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, nil
	}
	if _, _, gen := cam.hub.params(); gen == 0 {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, nil
	}
	st := &gortsplib.ServerStream{Server: r.srv, Desc: sdpOf(cam.hub)}
	if err := st.Initialize(); err != nil {
		return &base.Response{StatusCode: base.StatusInternalServerError}, nil, fmt.Errorf("viewer stream: %w", err)
	}
	r.nextID++
	tr := "tcp"
	if ctx.Transport == gortsplib.TransportUDP {
		tr = "udp"
	} else if ctx.Transport == gortsplib.TransportUDPMulticast {
		tr = "udp-multicast"
	}
	id := strconv.Itoa(r.nextID)
	v := &viewer{hub: cam.hub, sink: newSink(id, ctx.Conn.NetConn().RemoteAddr().String(), tr, r.o.ViewerQueue), stream: st}
	r.viewers[ctx.Session] = v
	// OnStreamWriteError finds the viewer here rather than in r.viewers:
	// it runs inside the viewer's own stream write, which must not wait
	// for r.mu (OnSessionClose holds it).
	ctx.Session.SetUserData(v)
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

// OnPlay prepares the viewer's writer; OnResponse starts it.
func (r *rtspServer) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.viewers[ctx.Session]
	if v == nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, errors.New("PLAY without SETUP")
	}
	if v.playing {
		return &base.Response{StatusCode: base.StatusOK}, nil
	}
	v.playing = true
	enc, err := v.stream.Desc.Medias[0].Formats[0].(*format.H264).CreateEncoder()
	if err != nil {
		return &base.Response{StatusCode: base.StatusInternalServerError}, fmt.Errorf("rtp encoder: %w", err)
	}
	media := v.stream.Desc.Medias[0]
	write := func(p *rtp.Packet, ntp time.Time) error {
		if err := v.stream.WritePacketRTPWithNTP(media, p, ntp); err != nil {
			return err
		}
		if v.writeFailed.Swap(false) {
			return errQueueFull
		}
		return nil
	}
	ss := ctx.Session
	v.start = func() {
		wctx, cancel := context.WithCancel(r.ctx)
		v.cancel = cancel
		v.hub.attach(v.sink)
		r.log.Info("rtsp: viewer playing", "path", ctx.Path, "viewer", v.sink.id, "remote", v.sink.remote, "transport", v.sink.transport)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			err := runWriter(wctx, v.hub, v.sink, enc, write, writerConfig{keyframeWait: r.o.KeyframeWait})
			if err != nil && wctx.Err() == nil {
				r.log.Warn("rtsp: viewer writer stopped", "viewer", v.sink.id, "err", err)
				ss.Close()
			}
		}()
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnResponse starts a viewer's writer when its PLAY response goes out.
// Not earlier: gortsplib makes the session a reader of its stream only
// after OnPlay returns, and packets written before that are lost, which
// would lose the keyframe the viewer must start with.
func (r *rtspServer) OnResponse(c *gortsplib.ServerConn, res *base.Response) {
	ss := c.Session()
	if ss == nil || res.StatusCode != base.StatusOK {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v := r.viewers[ss]; v != nil && v.start != nil {
		start := v.start
		v.start = nil
		start()
	}
}

// OnSessionClose ends the session's viewer, if any.
func (r *rtspServer) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	r.mu.Lock()
	v := r.viewers[ctx.Session]
	delete(r.viewers, ctx.Session)
	r.mu.Unlock()
	if v == nil {
		return
	}
	r.endViewer(v)
	c := v.sink.counts()
	r.log.Info("rtsp: viewer left", "viewer", v.sink.id, "remote", v.sink.remote, "frames", c.frames, "bytes", c.bytes,
		"dropped", c.dropped, "reason", ctx.Error)
}

// endViewer stops a viewer's writer and closes its stream. The writer is
// not waited for here (it may be writing to the stream being closed);
// close waits for all of them.
func (r *rtspServer) endViewer(v *viewer) {
	r.mu.Lock()
	cancel := v.cancel
	v.playing, v.start = true, nil // a late PLAY must not start a writer
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	v.hub.detach(v.sink)
	v.stream.Close()
}

// OnStreamWriteError is called, inside the viewer writer's stream write,
// when gortsplib could not queue a packet for the session: its queue is
// full.
func (r *rtspServer) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	if v, ok := ctx.Session.UserData().(*viewer); ok {
		v.writeFailed.Store(true)
	}
}

// OnPacketsLost is about packets a client sent us (RTCP only, for viewers).
func (r *rtspServer) OnPacketsLost(ctx *gortsplib.ServerHandlerOnPacketsLostCtx) {
	r.log.Debug("rtsp: packets from a client lost", "lost", ctx.Lost)
}

// OnDecodeError is about undecodable packets a client sent us.
func (r *rtspServer) OnDecodeError(ctx *gortsplib.ServerHandlerOnDecodeErrorCtx) {
	r.log.Debug("rtsp: undecodable packet from a client", "err", ctx.Error)
}

// OnRequest runs before gortsplib handles a request. gortsplib delays its
// answer to every SETUP from a "GStreamer" User-Agent by one second, a
// workaround for GStreamer's rtspclientsink publishing to it; this server
// accepts no publishers, and the delay would add a second to every
// GStreamer viewer's start. Renaming the agent for that request only skips
// it; nothing else reads the header.
func (r *rtspServer) OnRequest(_ *gortsplib.ServerConn, req *base.Request) {
	if req.Method != base.Setup {
		return
	}
	if ua := req.Header["User-Agent"]; len(ua) == 1 && strings.HasPrefix(ua[0], "GStreamer") {
		req.Header["User-Agent"] = base.HeaderValue{"viewer " + ua[0]}
	}
}

// OnConnOpen logs connections.
func (r *rtspServer) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	r.log.Debug("rtsp: connection opened", "remote", ctx.Conn.NetConn().RemoteAddr())
}

// OnConnClose logs connections.
func (r *rtspServer) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	r.log.Debug("rtsp: connection closed", "remote", ctx.Conn.NetConn().RemoteAddr(), "err", ctx.Error)
}
