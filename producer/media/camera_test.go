package media

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/ipcam"
	"github.com/framehub/framehub/sdk"
)

// The in-process tests of the rtsp:// source: a stand-in camera
// (internal/testutil/ipcam, gortsplib) publishing a real x264 stream on
// 127.0.0.1, the pipeline reading it, and SDK consumers. test/ipcam has
// the multi-process ones (the producer program, the recorder, a camera
// killed and restarted).

var testStream struct {
	once sync.Once
	s    *ipcam.Stream
	err  error
}

// cameraStream is 3 s of 320×240 at 30 fps, an IDR every 30 frames,
// encoded once per test binary.
func cameraStream(t *testing.T) *ipcam.Stream {
	t.Helper()
	testStream.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		testStream.s, testStream.err = ipcam.Encode(ctx, ipcam.EncodeConfig{Width: 320, Height: 240, FPS: 30, Frames: 90, GOP: 30, BitrateKbps: 800})
	})
	if testStream.err != nil {
		t.Skipf("cannot encode the camera's test stream: %v", testStream.err)
	}
	return testStream.s
}

func startCamera(t *testing.T, cfg ipcam.Config) *ipcam.Camera {
	t.Helper()
	cfg.Stream = cameraStream(t)
	cam, err := ipcam.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(cam.Close)
	return cam
}

// expected is what the h264 stream must carry for an access unit the
// camera sent: its NAL units unchanged, after an access unit delimiter
// when it had none, and with the SDP's SPS and PPS before an IDR that
// came without them (PROTOCOL.md §7, "Encoded streams").
func expected(s *ipcam.Stream, au ipcam.AU) []byte {
	out := au
	if au.Type(0) != 9 {
		out = append(ipcam.AU{{0x09, 0xf0}}, out...)
	}
	if au.IDR() && au.Type(0) != 9 && len(au.Without(7)) == len(au) {
		out = append(ipcam.AU{out[0], s.SPS, s.PPS}, out[1:]...)
	}
	return out.AnnexB()
}

func TestCameraPassThrough(t *testing.T) {
	for _, ca := range []struct {
		name      string
		params    ipcam.Params
		auth      ipcam.AuthMethod
		transport string
		noMarker  bool
	}{
		{"in-band parameter sets, TCP, digest", ipcam.ParamsInBand, ipcam.AuthDigest, TransportTCP, false},
		{"parameter sets in the SDP only, UDP, basic", ipcam.ParamsInSDP, ipcam.AuthBasic, TransportUDP, false},
		{"no RTP marker bits", ipcam.ParamsInSDP, ipcam.AuthNone, TransportTCP, true},
	} {
		t.Run(ca.name, func(t *testing.T) {
			const user, pass = "viewer", "pa55-w0rd!"
			cam := startCamera(t, ipcam.Config{Params: ca.params, Auth: ca.auth, User: user, Pass: pass, UDP: ca.transport == TransportUDP, NoMarker: ca.noMarker})
			logs := &testutil.LockedBuffer{}
			h := newHarness(t, Config{Source: cam.URL(user, pass), RTSPTransport: ca.transport, Decoder: DecoderNone,
				Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			raw, h264 := h.p.Streams()
			require.False(t, raw, "Decoder none: no raw stream")
			require.True(t, h264)
			h.run()
			c := h.dial(sdk.Options{Stream: StreamH264, MaxInFlight: 8})
			t.Cleanup(func() { c.Close() })

			s, sent := cameraStream(t), cam.Sent()
			want := make([][]byte, len(sent))
			for i, au := range sent {
				want[i] = expected(s, au)
			}
			at := -1 // index in sent of the last frame received
			var lastPTS int64
			for n := 0; n < len(sent)+15; n++ { // past the end of the loop
				f := next(t, c)
				data, err := f.Data()
				require.NoError(t, err)
				if at < 0 {
					for i := range want {
						if bytes.Equal(want[i], data) {
							require.Equal(t, -1, at, "access units %d and %d are the same: the test cannot tell them apart", at, i)
							at = i
						}
					}
					require.GreaterOrEqual(t, at, 0, "frame %d (%d bytes) is none of the camera's access units", n, len(data))
				} else {
					at = (at + 1) % len(sent)
					require.Equal(t, want[at], data, "frame %d: not the camera's access unit %d byte for byte", n, at)
					require.Zero(t, f.Dropped(), "frame %d", n)
				}
				idr := sent[at].IDR()
				require.Equal(t, idr, f.Keyframe(), "frame %d (access unit %d): keyframe", n, at)
				require.Equal(t, idr, f.Header(), "frame %d (access unit %d): header", n, at)
				require.Equal(t, f.PTS(), f.DTS(), "no B-frames: DTS = PTS")
				if n > 0 {
					require.InDelta(t, float64(time.Second/30), float64(f.PTS()-lastPTS), 1, "frame %d: PTS advance by the camera's frame interval", n)
				}
				lastPTS = f.PTS()
				f.Release()
			}
			caps := c.Caps()
			require.Equal(t, "H264", caps.Format)
			require.Equal(t, [4]int{320, 240, 30, 1}, [4]int{caps.Width, caps.Height, caps.FPSNum, caps.FPSDen})
			require.Regexp(t, `^avc1\.[0-9a-f]{6}$`, caps.Codec)
			st := h.p.Stats()
			require.True(t, st.CameraConnected)
			require.Zero(t, st.PacketsLost)
			require.Zero(t, st.BadAccessUnits)
			require.Equal(t, 1, cam.Sessions())
			require.NotContains(t, logs.String(), pass, "the password is never logged")
			require.Contains(t, logs.String(), "camera connected")
		})
	}
}

// TestCameraWrongPassword: a camera that refuses the credentials is
// retried with backoff, the log says why, without the password.
func TestCameraWrongPassword(t *testing.T) {
	cam := startCamera(t, ipcam.Config{Auth: ipcam.AuthDigest, User: "admin", Pass: "right-one"})
	logs := &testutil.LockedBuffer{}
	h := newHarness(t, Config{Source: cam.URL("admin", "wrong-one"), Decoder: DecoderNone, RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	h.run()
	testutil.WaitUntil(t, waitTimeout, func() bool { return h.p.Stats().Restarts >= 2 }, "retries")
	require.Contains(t, logs.String(), "401")
	require.NotContains(t, logs.String(), "wrong-one")
	require.Contains(t, h.p.Stats().LastError, "401")
	require.False(t, h.p.Stats().CameraConnected)
}

// TestCameraRawOnDemand: the raw stream's decoder runs only while a raw
// consumer is subscribed, and its first frame is the camera's current
// picture (decoded from the GOP cache), not one from the past.
func TestCameraRawOnDemand(t *testing.T) {
	cam := startCamera(t, ipcam.Config{Params: ipcam.ParamsInSDP})
	h := newHarness(t, Config{Source: cam.URL("", "")})
	h.run()
	hc := h.dial(sdk.Options{Stream: StreamH264, MaxInFlight: 8})
	t.Cleanup(func() { hc.Close() })
	var lastH264 int64
	for n := 0; n < 40; n++ { // past the first IDR: the GOP cache has something
		f := next(t, hc)
		lastH264 = f.Capture()
		f.Release()
	}
	require.False(t, h.p.Stats().DecoderRunning, "no raw consumer: no decoding")
	require.Zero(t, h.p.Stats().DecoderStarts)

	for round := 1; round <= 2; round++ {
		rc := h.dial(sdk.Options{Stream: StreamRaw, MaxInFlight: 4})
		testutil.WaitUntil(t, waitTimeout, func() bool { return h.p.Stats().DecoderRunning }, "decoder started")
		for n := 0; n < 10; n++ {
			f := next(t, rc)
			if n == 0 {
				require.GreaterOrEqual(t, f.Capture(), lastH264, "the first raw frame is no older than what the camera sent before the subscription")
			}
			caps := rc.Caps()
			require.Equal(t, [3]any{"NV12", 320, 240}, [3]any{caps.Format, caps.Width, caps.Height})
			y, err := f.Plane(0)
			require.NoError(t, err)
			require.GreaterOrEqual(t, len(y), 320*240)
			f.Release()
		}
		require.NoError(t, rc.Close())
		testutil.WaitUntil(t, waitTimeout, func() bool { return !h.p.Stats().DecoderRunning }, "decoder stopped after the last raw consumer left")
		require.Equal(t, uint64(round), h.p.Stats().DecoderStarts)
	}
	st := h.p.Stats()
	require.Zero(t, st.DecoderSkipped)
	t.Logf("raw frames %d: zero-copy %d, copied %d", st.RawFrames, st.ZeroCopyFrames, st.CopiedFrames)
}

// TestCameraPacketLoss: RTP packets lost on the way (UDP) are counted, and
// the access unit after a loss says DISCONT, so that decoders wait for the
// next keyframe; what arrives whole is still the camera's, byte for byte.
func TestCameraPacketLoss(t *testing.T) {
	cam := startCamera(t, ipcam.Config{Params: ipcam.ParamsInBand, UDP: true, DropEvery: 97})
	h := newHarness(t, Config{Source: cam.URL("", ""), RTSPTransport: TransportUDP, Decoder: DecoderNone})
	h.run()
	c := h.dial(sdk.Options{Stream: StreamH264, MaxInFlight: 8})
	t.Cleanup(func() { c.Close() })
	s := cameraStream(t)
	known := map[string]bool{}
	for _, au := range cam.Sent() {
		known[string(expected(s, au))] = true
	}
	disconts, whole := 0, 0
	for n := 0; n < 150; n++ {
		f := next(t, c)
		data, err := f.Data()
		require.NoError(t, err)
		if known[string(data)] {
			whole++
		}
		if n > 0 && f.Discont() {
			disconts++
		}
		f.Release()
	}
	st := h.p.Stats()
	require.NotZero(t, st.PacketsLost+st.BadAccessUnits, "losses seen")
	require.NotZero(t, disconts, "frames after a loss say DISCONT")
	require.Greater(t, whole, 75, "what arrived whole is the camera's")
}
