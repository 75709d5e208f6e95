package streamer

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
)

// fakeMediaServer accepts one published H.264 stream, as MediaMTX would,
// and records the access units it receives.
type fakeMediaServer struct {
	srv *gortsplib.Server

	mu     sync.Mutex
	sps    []byte
	frames []viewed
	more   chan struct{}
	ln     net.Listener
}

// startFakeMediaServer serves RTSP on addr; port 0 picks a free one, which
// addr() then returns.
func startFakeMediaServer(t *testing.T, addr string) *fakeMediaServer {
	t.Helper()
	f := &fakeMediaServer{more: make(chan struct{}, 1)}
	f.srv = &gortsplib.Server{Handler: f, RTSPAddress: addr, Listen: func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err == nil {
			f.mu.Lock()
			f.ln = ln
			f.mu.Unlock()
		}
		return ln, err
	}}
	require.NoError(t, f.srv.Start())
	t.Cleanup(f.srv.Close)
	return f
}

// addr is the address the server listens on.
func (f *fakeMediaServer) addr() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ln.Addr().String()
}

// restartFakeMediaServer serves RTSP again on addr, the address of a
// server that was closed: the port is free again at once (Go listens with
// SO_REUSEADDR), unless some other socket took it meanwhile, which a short
// retry on EADDRINUSE outlasts (an outgoing connection's ephemeral port).
func restartFakeMediaServer(t *testing.T, addr string) *fakeMediaServer {
	t.Helper()
	var f *fakeMediaServer
	var err error
	testutil.WaitUntil(t, waitTimeout, func() bool {
		f = &fakeMediaServer{more: make(chan struct{}, 1)}
		f.srv = &gortsplib.Server{Handler: f, RTSPAddress: addr}
		err = f.srv.Start()
		return !errors.Is(err, syscall.EADDRINUSE)
	}, "%s to be free again", addr)
	require.NoError(t, err)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeMediaServer) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	var h *format.H264
	if ctx.Description.FindFormat(&h) == nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, fmt.Errorf("no H.264 announced")
	}
	f.mu.Lock()
	f.sps = h.SPS
	f.mu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (f *fakeMediaServer) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil, nil
}

func (f *fakeMediaServer) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	var h *format.H264
	medi := ctx.Session.AnnouncedDescription().FindFormat(&h)
	dec, err := h.CreateDecoder()
	if err != nil {
		return &base.Response{StatusCode: base.StatusInternalServerError}, err
	}
	ctx.Session.OnPacketRTP(medi, h, func(pkt *rtp.Packet) {
		nalus, err := dec.Decode(pkt)
		if err != nil {
			return
		}
		n, key, err := frameNumber(nalus)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.frames = append(f.frames, viewed{n: n, key: key, ts: pkt.Timestamp, at: time.Now()})
		f.mu.Unlock()
		select {
		case f.more <- struct{}{}:
		default:
		}
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// waitFrames waits until n frames arrived and returns them.
func (f *fakeMediaServer) waitFrames(t *testing.T, n int) []viewed {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		got := append([]viewed(nil), f.frames...)
		f.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-f.more:
		case <-deadline.C:
			t.Fatalf("media server got %d frames within %v, want %d", len(got), waitTimeout, n)
		}
	}
}

func TestPublishReconnects(t *testing.T) {
	ms := startFakeMediaServer(t, "127.0.0.1:0")
	addr := ms.addr()

	f := newFeeder(300, 0)
	st := startTestStreamer(t, f.requestKey, func(o *Config) {
		o.Publish = "rtsp://" + addr + "/mirror"
		o.PublishBackoffMax = 500 * time.Millisecond
	})
	f.start(t, st.cams[0].hub)
	got := ms.waitFrames(t, 20)
	requireContinuous(t, got)
	ms.mu.Lock()
	require.Equal(t, testSPS, ms.sps, "the announced SDP carries the SPS")
	ms.mu.Unlock()
	require.Eventually(t, st.pub.connected.Load, waitTimeout, 10*time.Millisecond)

	// The server goes away and comes back on the same address.
	ms.srv.Close()
	require.Eventually(t, func() bool { return !st.pub.connected.Load() }, waitTimeout, 10*time.Millisecond)
	down := time.Now()
	ms2 := restartFakeMediaServer(t, addr)
	got = ms2.waitFrames(t, 10)
	requireContinuous(t, got)
	t.Logf("published again %v after the server came back (attempts %d)", got[0].at.Sub(down), st.pub.attempts.Load())
	require.GreaterOrEqual(t, st.pub.attempts.Load(), uint64(2))
}
