package web

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
)

// A Constrained Baseline SPS and PPS (x264enc, 160×120).
var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x15, 0xda, 0x05, 0x07, 0xec, 0x05, 0xa8, 0x30, 0x30, 0x35, 0x28, 0x00, 0x00, 0x03, 0x00, 0x08, 0x00, 0x00, 0x03, 0x01, 0xe4, 0x78, 0xb1, 0x75}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
)

// testAU is synthetic access unit n: AUD, then SPS, PPS and an IDR slice
// for a keyframe, else a non-IDR slice; n is in the slice's bytes.
func testAU(n int, key bool) *accessUnit {
	b := []byte{0, 0, 0, 1, 0x09, 0xf0}
	if key {
		b = append(b, 0, 0, 0, 1)
		b = append(b, testSPS...)
		b = append(b, 0, 0, 0, 1)
		b = append(b, testPPS...)
		b = append(b, 0, 0, 0, 1, 0x65)
	} else {
		b = append(b, 0, 0, 0, 1, 0x41)
	}
	b = append(b, 0x88, byte(n>>8)|0x80, byte(n)|0x01, 0x84)
	return &accessUnit{annexB: b, nalus: splitAnnexB(b), key: key, pts: time.Duration(n) * time.Second / 30, dur: time.Second / 30}
}

// feed publishes access units into c at 30 fps until ctx ends: a keyframe
// every gop frames and after every keyframe request. It stands in for the
// producer and the camera's keyframe loop (Server.Run must not run).
func feed(ctx context.Context, c *camera, gop int) {
	t := time.NewTicker(time.Second / 30)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		forced := false
		select {
		case <-c.keys.Pending():
			forced = true
		default:
		}
		c.publish(testAU(n, forced || n%gop == 0))
	}
}

func startFeed(t *testing.T, c *camera, gop int) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { feed(ctx, c, gop) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// whepClient is a receive-only pion peer, as a browser's WHEP player.
type whepClient struct {
	pc        *webrtc.PeerConnection
	location  string
	connected chan struct{}
	packets   atomic.Int64
	firstNAL  atomic.Int32 // NAL type of the first RTP payload (24: STAP-A)
	gotTrack  chan struct{}
}

func dialWHEP(t *testing.T, base, cam string) *whepClient {
	t.Helper()
	var m webrtc.MediaEngine
	require.NoError(t, m.RegisterDefaultCodecs())
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(&m)).NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	wc := &whepClient{pc: pc, connected: make(chan struct{}), gotTrack: make(chan struct{})}
	wc.firstNAL.Store(-1)
	var once, trackOnce sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(wc.connected) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		trackOnce.Do(func() { close(wc.gotTrack) })
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if wc.packets.Add(1) == 1 && len(p.Payload) > 0 {
				wc.firstNAL.Store(int32(p.Payload[0] & 0x1f))
			}
		}
	})
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	require.NoError(t, err)
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	<-gathered
	resp, err := http.Post(base+"/"+cam+"/whep", "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	require.NoError(t, err)
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(answer))
	require.Equal(t, "application/sdp", resp.Header.Get("Content-Type"))
	wc.location = resp.Header.Get("Location")
	require.Regexp(t, `^/`+cam+`/whep/[0-9a-f]{32}$`, wc.location)
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}))
	return wc
}

func do(t *testing.T, method, u, token string, hdr map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestWHEP(t *testing.T) {
	s, base, tok := testServer(t, nil)
	cam := s.cams["cam"]
	startFeed(t, cam, 300)    // keyframes only when asked: a viewer's start asks
	defer s.webrtc.closeAll() // what Run does at its end; Run is not run: the feed stands in for the producer

	var clients []*whepClient
	for range 3 {
		clients = append(clients, dialWHEP(t, base, "cam"))
	}
	for i, wc := range clients {
		select {
		case <-wc.connected:
		case <-time.After(10 * time.Second):
			t.Fatalf("client %d: not connected within 10 s", i)
		}
		require.Eventually(t, func() bool { return wc.packets.Load() >= 30 }, 10*time.Second, 10*time.Millisecond, "client %d", i)
		require.Equal(t, int32(24), wc.firstNAL.Load(), "client %d starts on a keyframe: SPS and PPS in a STAP-A", i)
	}
	require.Equal(t, 3, s.webrtc.count())
	require.Equal(t, 3, cam.status().Viewers["webrtc"])

	// Ending a session needs the admin token.
	resp, body := do(t, http.MethodDelete, base+clients[0].location, "", nil, "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
	resp, body = do(t, http.MethodDelete, base+clients[0].location, tok, nil, "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, 2, s.webrtc.count())
	resp, _ = do(t, http.MethodDelete, base+clients[0].location, tok, nil, "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// A viewer that goes away ends its session by itself.
	require.NoError(t, clients[1].pc.Close())
	require.Eventually(t, func() bool { return s.webrtc.count() == 1 }, 15*time.Second, 20*time.Millisecond)
}

func TestWHEPBadRequests(t *testing.T) {
	_, base, _ := testServer(t, nil)
	resp, body := do(t, http.MethodPost, base+"/cam/whep", "", map[string]string{"Content-Type": "text/plain"}, "v=0")
	require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode, body)
	resp, body = do(t, http.MethodPost, base+"/cam/whep", "", map[string]string{"Content-Type": "application/sdp"}, "not sdp")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	require.Contains(t, body, "bad SDP offer")
	resp, body = do(t, http.MethodPost, base+"/nope/whep", "", map[string]string{"Content-Type": "application/sdp"}, "v=0")
	require.Equal(t, http.StatusNotFound, resp.StatusCode, body)
	// DNS rebinding and other sites' pages are refused.
	resp, body = do(t, http.MethodPost, base+"/cam/whep", "", map[string]string{"Content-Type": "application/sdp",
		"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, "v=0")
	require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	resp, body = do(t, http.MethodPatch, base+"/cam/whep/0123", "", map[string]string{"Content-Type": "application/trickle-ice-sdpfrag"}, "")
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, body)
}

// TestSlowViewer: a viewer that does not read costs only itself. publish
// never waits; the slow viewer's queue holds a run that starts at a
// keyframe, and after it overflowed it starts again at a keyframe.
func TestSlowViewer(t *testing.T) {
	cfg := Defaults()
	cfg.Cameras[0].Socket = "@unused"
	require.NoError(t, cfg.fill())
	c := newCamera(cfg.Cameras[0], &cfg)
	fast := c.addViewer("webrtc", 8)
	slow := c.addViewer("webrtc", 8)
	var got []*accessUnit
	var wg sync.WaitGroup
	wg.Go(func() {
		for au := range fast.C() {
			got = append(got, au)
			if len(got) == 100 {
				return
			}
		}
	})
	for n := range 100 {
		c.publish(testAU(n, n%10 == 0)) // would block here if a viewer could stall the camera
		if n%5 == 4 {
			// Let the fast viewer keep up, as a real one does within a
			// frame's time.
			require.Eventually(t, func() bool { return len(fast.ch) == 0 }, 5*time.Second, time.Millisecond)
		}
	}
	wg.Wait()
	require.Len(t, got, 100, "the fast viewer lost nothing")
	require.Zero(t, fast.dropped.Load())
	// Its queue took frames 0..7; frame 8 overflowed it, and so did every
	// later keyframe it waited for (10, 20 ... 90); the frames between were
	// passed over.
	require.Equal(t, uint64(10), slow.dropped.Load())
	require.Len(t, slow.ch, 8)
	first := <-slow.C()
	require.True(t, first.key)

	// Once it reads again it restarts at the next keyframe.
	for len(slow.ch) > 0 {
		<-slow.C()
	}
	c.publish(testAU(100, false))
	c.publish(testAU(101, true))
	c.publish(testAU(102, false))
	require.Len(t, slow.ch, 2)
	require.True(t, (<-slow.C()).key)
	c.removeViewer(fast)
	c.removeViewer(slow)
	require.Empty(t, c.status().Viewers)
}

// TestWHEPFDs: sessions opened and closed leave no descriptor behind.
func TestWHEPFDs(t *testing.T) {
	s, base, tok := testServer(t, nil)
	startFeed(t, s.cams["cam"], 30)
	defer s.webrtc.closeAll() // what Run does at its end; Run is not run: the feed stands in for the producer
	// One session first, so that what pion sets up once is not counted.
	warm := dialWHEP(t, base, "cam")
	<-warm.connected
	do(t, http.MethodDelete, base+warm.location, tok, nil, "")
	require.NoError(t, warm.pc.Close())
	http.DefaultClient.CloseIdleConnections()
	before := testutil.CountFDs(t, os.Getpid())
	for range 5 {
		wc := dialWHEP(t, base, "cam")
		select {
		case <-wc.connected:
		case <-time.After(10 * time.Second):
			t.Fatal("not connected within 10 s")
		}
		resp, _ := do(t, http.MethodDelete, base+wc.location, tok, nil, "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.NoError(t, wc.pc.Close())
	}
	http.DefaultClient.CloseIdleConnections()
	require.Eventually(t, func() bool { return testutil.FDCount(os.Getpid()) <= before }, 10*time.Second, 20*time.Millisecond,
		"fds: %d, before: %d", testutil.FDCount(os.Getpid()), before)
}
