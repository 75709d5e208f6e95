// Package ipcam is a stand-in IP camera for tests and benchmarks: an RTSP
// server (gortsplib) on the loopback interface that publishes a real x264
// stream, looped at its frame rate, to every client that plays it, with
// optional basic or digest authentication, over TCP and UDP.
//
// The stream is encoded once, by GStreamer's x264enc through gst-launch-1.0
// (Encode), into access units the test knows byte for byte: what a
// producer reading the camera must pass on unchanged. A camera either
// sends them as encoded, with an access unit delimiter and the SPS and PPS
// in-band before every IDR (ParamsInBand), or strips the delimiters and
// parameter sets and announces the SPS and PPS in the SDP only, as many
// real cameras do (ParamsInSDP).
//
// Being internal, it is not part of any API.
package ipcam

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// AU is one access unit: its NAL units, without start codes.
type AU [][]byte

// Type returns the type of NAL unit i.
func (a AU) Type(i int) h264.NALUType { return h264.NALUType(a[i][0] & 0x1f) }

// IDR reports whether the access unit holds an IDR slice.
func (a AU) IDR() bool {
	for i := range a {
		if a.Type(i) == h264.NALUTypeIDR {
			return true
		}
	}
	return false
}

// AnnexB returns the access unit in Annex B byte-stream format, a
// four-byte start code before each NAL unit.
func (a AU) AnnexB() []byte {
	var out []byte
	for _, n := range a {
		out = append(out, 0, 0, 0, 1)
		out = append(out, n...)
	}
	return out
}

// Without returns the access unit without the NAL units of the given types.
func (a AU) Without(types ...h264.NALUType) AU {
	var out AU
next:
	for i, n := range a {
		for _, t := range types {
			if a.Type(i) == t {
				continue next
			}
		}
		out = append(out, n)
	}
	return out
}

// Stream is an encoded test stream.
type Stream struct {
	AUs      []AU
	SPS, PPS []byte // of the first IDR
	Width    int
	Height   int
	FPS      int
}

// EncodeConfig describes the stream Encode makes.
type EncodeConfig struct {
	Width, Height, FPS int
	Frames             int // how many; the camera loops them
	GOP                int // frames between IDRs
	BitrateKbps        int
	// Pattern are videotestsrc's properties; default "pattern=ball" (every
	// frame differs, few bits). "pattern=smpte horizontal-speed=8" makes
	// x264 spend 4 Mbit/s at 1080p30, as a real camera does.
	Pattern string
}

// Encode encodes cfg.Frames frames of videotestsrc with x264enc (no
// B-frames, an access unit delimiter in each access unit, SPS and PPS
// before every IDR) by running gst-launch-1.0, and splits the result into
// access units. The first is an IDR. ctx bounds the encoding.
func Encode(ctx context.Context, cfg EncodeConfig) (*Stream, error) {
	if cfg.Pattern == "" {
		cfg.Pattern = "pattern=ball"
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.FPS <= 0 || cfg.Frames <= 0 || cfg.GOP <= 0 || cfg.BitrateKbps <= 0 {
		return nil, fmt.Errorf("ipcam: encode: every field of %+v must be positive", cfg)
	}
	gst, err := exec.LookPath("gst-launch-1.0")
	if err != nil {
		return nil, fmt.Errorf("ipcam: gst-launch-1.0 not installed (Debian package gstreamer1.0-tools): %w", err)
	}
	dir, err := os.MkdirTemp("", "ipcam-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "stream.h264")
	args := append(append([]string{"-q", "videotestsrc", "num-buffers=" + strconv.Itoa(cfg.Frames)}, strings.Fields(cfg.Pattern)...), "!",
		fmt.Sprintf("video/x-raw,format=I420,width=%d,height=%d,framerate=%d/1", cfg.Width, cfg.Height, cfg.FPS), "!",
		"x264enc", "tune=zerolatency", "speed-preset=ultrafast", "bframes=0", "aud=true", "byte-stream=true",
		"key-int-max="+strconv.Itoa(cfg.GOP), "bitrate="+strconv.Itoa(cfg.BitrateKbps), "!",
		"video/x-h264,stream-format=byte-stream,alignment=au", "!", "filesink", "location="+file)
	if out, err := exec.CommandContext(ctx, gst, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ipcam: encode with gst-launch-1.0: %w: %s", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	s, err := Split(b)
	if err != nil {
		return nil, err
	}
	s.Width, s.Height, s.FPS = cfg.Width, cfg.Height, cfg.FPS
	return s, nil
}

// Split splits an Annex B byte stream whose access units each start with a
// delimiter into access units, and finds the first SPS and PPS.
func Split(b []byte) (*Stream, error) {
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("ipcam: parse Annex B: %w", err)
	}
	s := &Stream{}
	for _, n := range nalus {
		t := h264.NALUType(n[0] & 0x1f)
		if t == h264.NALUTypeAccessUnitDelimiter || len(s.AUs) == 0 {
			s.AUs = append(s.AUs, nil)
		}
		last := &s.AUs[len(s.AUs)-1]
		*last = append(*last, n)
		switch {
		case t == h264.NALUTypeSPS && s.SPS == nil:
			s.SPS = n
		case t == h264.NALUTypePPS && s.PPS == nil:
			s.PPS = n
		}
	}
	if len(s.AUs) == 0 || !s.AUs[0].IDR() || s.SPS == nil || s.PPS == nil {
		return nil, errors.New("ipcam: the stream does not start with an IDR with its SPS and PPS")
	}
	return s, nil
}

// Params says where a camera sends its SPS and PPS.
type Params int

const (
	// ParamsInBand sends the access units as encoded: AUD first, SPS and
	// PPS before every IDR (and in the SDP too).
	ParamsInBand Params = iota
	// ParamsInSDP strips the delimiters and parameter sets: the SPS and
	// PPS are only in the SDP.
	ParamsInSDP
)

// AuthMethod is the authentication a camera asks for.
type AuthMethod int

const (
	AuthNone AuthMethod = iota
	AuthBasic
	AuthDigest
)

// Config configures a camera.
type Config struct {
	Stream *Stream
	// Addr is the RTSP (TCP) address; default "127.0.0.1:0" (any port:
	// Camera.Addr tells which).
	Addr string
	// Path is the stream's path; default "/cam".
	Path string
	// UDP enables the UDP transport on two ports of its own (an even RTP
	// port and the next one for RTCP), chosen free at Start.
	UDP        bool
	Params     Params
	Auth       AuthMethod
	User, Pass string
	// NoMarker clears the RTP marker bit of every packet, as some cameras
	// do: a reader tells where an access unit ends only from the next
	// one's new timestamp.
	NoMarker bool
	// DropEvery, when positive, leaves out every DropEvery-th RTP packet
	// (its sequence number used up), as a lossy network would.
	DropEvery int
}

// Camera is a running stand-in camera. Start it, Close it.
type Camera struct {
	cfg    Config
	srv    *gortsplib.Server
	stream *gortsplib.ServerStream
	medi   *description.Media
	aus    []AU // as sent

	mu       sync.Mutex
	sessions int // clients that sent PLAY

	// ready is closed once Start has set stream: the server accepts
	// clients before (a producer still retrying a port this camera now
	// has may DESCRIBE at once), and its handlers wait for it.
	ready chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

// Start starts the camera: it listens, and publishes the stream from now
// on, looped, at its frame rate, whether anyone plays it or not (as a
// camera does).
func Start(cfg Config) (*Camera, error) {
	if cfg.Stream == nil || len(cfg.Stream.AUs) == 0 {
		return nil, errors.New("ipcam: no stream")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Path == "" {
		cfg.Path = "/cam"
	}
	c := &Camera{cfg: cfg, ready: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	for _, au := range cfg.Stream.AUs {
		if cfg.Params == ParamsInSDP {
			au = au.Without(h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeSPS, h264.NALUTypePPS)
		}
		c.aus = append(c.aus, au)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ipcam: listen on %s: %w", cfg.Addr, err)
	}
	c.srv = &gortsplib.Server{
		Handler:     c,
		RTSPAddress: ln.Addr().String(),
		Listen:      func(string, string) (net.Listener, error) { return ln, nil },
	}
	switch cfg.Auth {
	case AuthBasic:
		c.srv.AuthMethods = []auth.VerifyMethod{auth.VerifyMethodBasic}
	case AuthDigest:
		c.srv.AuthMethods = []auth.VerifyMethod{auth.VerifyMethodDigestMD5}
	}
	if cfg.UDP {
		rtp, err := freeUDPPair()
		if err != nil {
			ln.Close()
			return nil, err
		}
		c.srv.UDPRTPAddress, c.srv.UDPRTCPAddress = fmt.Sprintf("127.0.0.1:%d", rtp), fmt.Sprintf("127.0.0.1:%d", rtp+1)
	}
	if err := c.srv.Start(); err != nil {
		ln.Close()
		return nil, fmt.Errorf("ipcam: start RTSP server: %w", err)
	}
	defer close(c.ready)
	c.medi = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{
		PayloadTyp: 96, PacketizationMode: 1, SPS: cfg.Stream.SPS, PPS: cfg.Stream.PPS,
	}}}
	c.stream = &gortsplib.ServerStream{Server: c.srv, Desc: &description.Session{Medias: []*description.Media{c.medi}}}
	if err := c.stream.Initialize(); err != nil {
		c.srv.Close()
		return nil, fmt.Errorf("ipcam: stream: %w", err)
	}
	enc, err := c.medi.Formats[0].(*format.H264).CreateEncoder()
	if err == nil {
		enc.PayloadMaxSize = 1200 // below the loopback MTU, as over a real network
	}
	if err != nil {
		c.stream.Close()
		c.srv.Close()
		return nil, err
	}
	go c.publish(enc)
	return c, nil
}

// freeUDPPair finds an even UDP port on 127.0.0.1 whose successor is free
// too. Another process may take them before the server binds them; Start
// then fails and may be retried.
func freeUDPPair() (int, error) {
	for range 50 {
		p := 20000 + 2*rand.IntN(20000)
		a, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		b, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p+1))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p, nil
	}
	return 0, errors.New("ipcam: no free pair of UDP ports")
}

// publish sends the access units, looped, one per frame interval, with
// RTP timestamps that go on increasing across loops, until Close.
func (c *Camera) publish(enc *rtph264.Encoder) {
	defer close(c.done)
	interval := time.Second / time.Duration(c.cfg.Stream.FPS)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	rtpTS := rand.Uint32()
	sent := 0
	for i := 0; ; i++ {
		pkts, err := enc.Encode(c.aus[i%len(c.aus)])
		if err == nil {
			for _, pkt := range pkts {
				pkt.Timestamp = rtpTS
				pkt.Marker = pkt.Marker && !c.cfg.NoMarker
				if sent++; c.cfg.DropEvery > 0 && sent%c.cfg.DropEvery == 0 {
					continue
				}
				_ = c.stream.WritePacketRTP(c.medi, pkt) // no reader: nothing to do
			}
		}
		rtpTS += uint32(90000 / c.cfg.Stream.FPS)
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
	}
}

// Addr is the camera's RTSP address (host:port).
func (c *Camera) Addr() string { return c.srv.RTSPAddress }

// URL is the camera's stream URL with user and pass, if given, in it.
func (c *Camera) URL(user, pass string) string {
	u := url.URL{Scheme: "rtsp", Host: c.Addr(), Path: c.cfg.Path}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u.String()
}

// Sent returns the access units as the camera sends them, in order; the
// camera loops over them.
func (c *Camera) Sent() []AU { return c.aus }

// Sessions returns how many clients have started playing so far.
func (c *Camera) Sessions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions
}

// Close stops the camera: every client's session ends.
func (c *Camera) Close() {
	close(c.stop)
	<-c.done
	c.stream.Close()
	c.srv.Close()
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (c *Camera) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if res, err := c.check(ctx.Conn, ctx.Request, ctx.Path); res != nil {
		return res, nil, err
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (c *Camera) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if res, err := c.check(ctx.Conn, ctx.Request, ctx.Path); res != nil {
		return res, nil, err
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (c *Camera) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	c.mu.Lock()
	c.sessions++
	c.mu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// check answers a request for another path (404) or without the right
// credentials (401, with the challenge); nil when it may go on.
func (c *Camera) check(conn *gortsplib.ServerConn, req *base.Request, path string) (*base.Response, error) {
	<-c.ready
	if c.stream == nil {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil // Start failed
	}
	if strings.Trim(path, "/") != strings.Trim(c.cfg.Path, "/") {
		return &base.Response{StatusCode: base.StatusNotFound}, nil
	}
	if c.cfg.Auth != AuthNone && !conn.VerifyCredentials(req, c.cfg.User, c.cfg.Pass) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, liberrors.ErrServerAuth{}
	}
	return nil, nil
}
