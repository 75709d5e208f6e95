package media

import (
	"errors"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/sdk"
)

func TestValidate(t *testing.T) {
	var c Config
	require.NoError(t, c.Validate())
	require.Equal(t, SourceTest, c.Source)
	require.Equal(t, [2]int{1920, 1080}, [2]int{c.Width, c.Height})
	require.Equal(t, [2]int{30, 1}, [2]int{c.FPSNum, c.FPSDen})
	require.Equal(t, "NV12", c.Format)
	require.Equal(t, 4000, c.BitrateKbps)
	require.Equal(t, 60, c.GOP)
	require.Equal(t, [2]int{4, 32}, [2]int{c.RawPoolMin, c.RawPoolMax})
	require.Equal(t, 64, c.H264PoolMax)
	require.Equal(t, 2<<20, c.H264SlabSize)
	require.Equal(t, [2]time.Duration{time.Second, 30 * time.Second}, [2]time.Duration{c.RetryMin, c.RetryMax})
	require.NotNil(t, c.Logger)

	c = Config{FPSNum: 25, FPSDen: 2}
	require.NoError(t, c.Validate())
	require.Equal(t, 25, c.GOP, "two seconds at 12.5 fps")

	for _, tc := range []struct {
		cfg  Config
		want string // in the error: the field and its value
	}{
		{Config{Source: "usb:0"}, `Source "usb:0"`},
		{Config{Source: "v4l2:video0"}, `Source "v4l2:video0"`},
		{Config{Source: "jetson-csi:x"}, `Source "jetson-csi:x"`},
		{Config{Source: "launch:  "}, `Source "launch:  "`},
		{Config{Width: 641, Height: 480}, "Width 641"},
		{Config{Width: 640, Height: 0}, "Height 0"},
		{Config{FPSNum: -1, FPSDen: 1}, "FPSNum/FPSDen -1/1"},
		{Config{Format: "I420"}, `Format "I420"`},
		{Config{Encoder: "x264enc ! fakesink"}, `Encoder "x264enc ! fakesink"`},
		{Config{GOP: -5}, "GOP -5"},
		{Config{RawPoolMin: 8, RawPoolMax: 4}, "RawPoolMin 8 and RawPoolMax 4"},
		{Config{RawPoolMax: 1}, "RawPoolMax 1"},
		{Config{H264SlabSize: 100}, "H264SlabSize 100"},
		{Config{RetryMin: time.Minute, RetryMax: time.Second}, "RetryMin 1m0s and RetryMax 1s"},
	} {
		cfg := tc.cfg
		err := cfg.Validate()
		require.Error(t, err, "%+v", tc.cfg)
		require.Contains(t, err.Error(), tc.want)
	}
}

// TestNewErrors: what is missing at start-up is named, with the package
// that provides it.
func TestNewErrors(t *testing.T) {
	srv, err := producer.New(producer.Config{Addr: uniqueAddr(t), Logger: testutil.Logger(t, slog.LevelError)})
	require.NoError(t, err)
	defer srv.Close()
	newErr := func(cfg Config) error {
		cfg.Logger = testutil.Logger(t, slog.LevelError)
		p, err := New(cfg, srv)
		if err == nil {
			p.Close()
		}
		require.Error(t, err, "%+v", cfg)
		return err
	}
	var me *MissingElementError

	err = newErr(Config{Encoder: "nosuchenc"})
	require.True(t, errors.As(err, &me), "%v", err)
	require.Equal(t, "nosuchenc", me.Element)
	require.ErrorIs(t, err, ErrMissingElement)
	require.Contains(t, err.Error(), `"nosuchenc"`)

	err = newErr(Config{Source: "v4l2:/dev/video9"})
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Contains(t, err.Error(), "/dev/video9")

	err = newErr(Config{Source: "v4l2:/dev/null"})
	require.Contains(t, err.Error(), "/dev/null")

	if !elementExists("nvarguscamerasrc") {
		err = newErr(Config{Source: "jetson-csi:0"})
		require.True(t, errors.As(err, &me), "%v", err)
		require.Equal(t, "nvarguscamerasrc", me.Element)
		require.Contains(t, err.Error(), "nvidia-l4t-gstreamer")

		err = newErr(Config{Source: "launch:nvarguscamerasrc sensor-id=1"})
		require.True(t, errors.As(err, &me), "%v", err)
		require.Equal(t, "nvarguscamerasrc", me.Element)
	}
	err = newErr(Config{Source: "launch:nosuchsrc"})
	require.True(t, errors.As(err, &me), "%v", err)
	require.Equal(t, "nosuchsrc", me.Element)

	err = newErr(Config{Source: "launch:videotestsrc nosuchproperty=1"})
	require.Contains(t, err.Error(), "nosuchproperty")

	// A failed New leaves no stream behind.
	require.Nil(t, srv.Stream(StreamRaw))
}

// TestZeroCopyTestSource: the test source writes straight into framehub's
// memfd pool; consumers get those surfaces, laid out as
// producer/surface.NV12, and nothing is copied.
func TestZeroCopyTestSource(t *testing.T) {
	h := newHarness(t, Config{Width: 328, Height: 240, RetryMin: 50 * time.Millisecond})
	h.run()
	c := h.dial(sdk.Options{Stream: StreamRaw, MaxInFlight: 4})
	want, err := surface.NV12(328, 240, 0)
	require.NoError(t, err)
	require.Equal(t, sdkPlanes(want.Planes), c.Caps().Planes)
	ids := map[uint32]bool{}
	for i := 0; i < 40; i++ {
		f := next(t, c)
		require.Equal(t, sdk.KindMemfd, f.Kind())
		require.GreaterOrEqual(t, f.SurfaceID(), uint32(firstSurfaceID))
		require.Equal(t, sdkPlanes(want.Planes), f.Planes())
		y, err := f.Plane(0)
		require.NoError(t, err)
		require.Len(t, y, int(want.Planes[0].Size))
		ids[f.SurfaceID()] = true
		f.Release()
	}
	require.LessOrEqual(t, len(ids), h.p.cfg.RawPoolMax, "surfaces come from a bounded pool")
	st := h.p.Stats()
	require.Positive(t, st.ZeroCopyFrames)
	require.Zero(t, st.CopiedFrames, "the test source never needs a copy")
	require.Zero(t, st.AdoptedFrames)
	require.Equal(t, st.RawFrames, st.ZeroCopyFrames)
	require.Positive(t, st.H264Frames)
}

// TestHeldBuffersFollowLeases: the producer references a GstBuffer exactly
// while a lease on it is live.
func TestHeldBuffersFollowLeases(t *testing.T) {
	h := newHarness(t, Config{Width: 320, Height: 240, Encoder: EncoderNone, RawPoolMax: 16})
	h.run()
	testutil.WaitUntil(t, waitTimeout, func() bool { st := h.p.Stats(); return st.RawFrames+st.UnwatchedFrames > 5 }, "frames flow")
	require.LessOrEqual(t, h.p.Stats().HeldBuffers, uint64(1), "nobody holds a lease")

	// A consumer that does not read holds its whole budget.
	c := h.dial(sdk.Options{Stream: StreamRaw, MaxInFlight: 6})
	testutil.WaitUntil(t, waitTimeout, func() bool { return h.p.Stats().HeldBuffers == 6 }, "6 leases → 6 buffers held, have %+v", h.p.Stats())
	n := h.p.Stats().RawFrames
	testutil.WaitUntil(t, waitTimeout, func() bool { return h.p.Stats().RawFrames >= n+5 }, "more frames published")
	require.Equal(t, uint64(6), h.p.Stats().HeldBuffers, "still at the budget: the new frames were not leased")

	// Reading and releasing frees them as fast as they come.
	for i := 0; i < 20; i++ {
		next(t, c).Release()
	}
	require.NoError(t, c.Flush())
	require.LessOrEqual(t, h.p.Stats().HeldBuffers, uint64(6))

	// Gone consumer, no lease, no buffer.
	require.NoError(t, c.Close())
	testutil.WaitUntil(t, waitTimeout, func() bool { return h.p.Stats().HeldBuffers <= 1 }, "buffers released with the leases, have %+v", h.p.Stats())
}

// TestIdleWithoutConsumers: without an encoder and without a raw
// consumer the frames never enter Go (fhgst.SampleWatch.SetIdle) but are
// counted, also as published on the raw stream; a consumer that subscribes
// is served at once, with consecutive sequence numbers, and idling resumes
// when it leaves.
func TestIdleWithoutConsumers(t *testing.T) {
	h := newHarness(t, Config{Width: 320, Height: 240, Encoder: EncoderNone})
	h.run()
	// The streaming thread hands over its count every 30 frames.
	testutil.WaitUntil(t, waitTimeout, func() bool { return h.p.Stats().UnwatchedFrames >= 60 }, "frames dropped while idle, have %+v", h.p.Stats())
	st := h.p.Stats()
	require.LessOrEqual(t, st.RawFrames, uint64(2), "frames before idling: the first, or one more after a caps change")
	pub := h.p.raw.Stats().Published
	require.GreaterOrEqual(t, pub, st.RawFrames+st.UnwatchedFrames, "unwatched frames count as published")

	c := h.dial(sdk.Options{Stream: StreamRaw, MaxInFlight: 4})
	var last uint64
	for i := range 20 {
		f := next(t, c)
		if i > 0 {
			require.Equal(t, last+1, f.Seq(), "frame %d: no gap while subscribed", i)
		}
		last = f.Seq()
		f.Release()
	}
	require.Positive(t, h.p.Stats().RawFrames-st.RawFrames, "frames published to the consumer")
	require.NoError(t, c.Close())

	u := h.p.Stats().UnwatchedFrames
	testutil.WaitUntil(t, waitTimeout, func() bool { return h.p.Stats().UnwatchedFrames >= u+60 }, "idle again after the consumer left, have %+v", h.p.Stats())
}

// TestRestartAfterError: a source that fails every 10 buffers is restarted
// with backoff, forever, and frames flow again each time.
func TestRestartAfterError(t *testing.T) {
	h := newHarness(t, Config{Width: 320, Height: 240, Encoder: EncoderNone,
		Source:   "launch:videotestsrc is-live=true ! identity name=flaky error-after=10",
		RetryMin: 20 * time.Millisecond, RetryMax: 80 * time.Millisecond})
	h.run()
	testutil.WaitUntil(t, waitTimeout, func() bool { st := h.p.Stats(); return st.Restarts >= 2 && st.RawFrames+st.UnwatchedFrames >= 25 }, "restarts and frames, have %+v", h.p.Stats())
	require.Contains(t, h.p.Stats().LastError, "flaky")
}

// TestSourceEndRestarts: a source that ends (EOS) reaches the pipeline's
// end of stream through both sinks (the raw sink's pump ends the encoder's
// input) and is restarted like a failed one.
func TestSourceEndRestarts(t *testing.T) {
	h := newHarness(t, Config{Width: 320, Height: 240,
		Source:   "launch:videotestsrc num-buffers=12",
		RetryMin: 20 * time.Millisecond, RetryMax: 80 * time.Millisecond})
	h.run()
	testutil.WaitUntil(t, waitTimeout, func() bool { st := h.p.Stats(); return st.Restarts >= 2 && st.RawFrames >= 24 && st.H264Frames > 0 },
		"restarts after end of stream, have %+v", h.p.Stats())
	require.Contains(t, h.p.Stats().LastError, "end of stream")
}

// TestNoFDLeak: a pipeline started and stopped leaves no fd behind.
func TestNoFDLeak(t *testing.T) {
	cycle := func() {
		srv, err := producer.New(producer.Config{Addr: uniqueAddr(t), Logger: testutil.Logger(t, slog.LevelError)})
		require.NoError(t, err)
		p, err := New(Config{Width: 320, Height: 240, Logger: testutil.Logger(t, slog.LevelError)}, srv)
		require.NoError(t, err)
		require.NoError(t, srv.Start())
		h := &harness{t: t, srv: srv, p: p}
		h.run()
		c := h.dial(sdk.Options{Stream: StreamRaw})
		for i := 0; i < 5; i++ {
			next(t, c).Release()
		}
		require.NoError(t, c.Close())
		testutil.WaitUntil(t, waitTimeout, func() bool { return p.Stats().H264Frames > 0 }, "h264 frames")
		h.stop()
	}
	cycle() // GStreamer's own lazily created fds (registry, clock) stay
	base := testutil.CountOwnFDs(t)
	for i := 0; i < 3; i++ {
		cycle()
	}
	// The pipeline's memfds and elements are released when it stops; the
	// bus (whose GstPoll holds fds) is also referenced by go-gst's wrapper,
	// released by its finalizer: let the collector run it.
	testutil.WaitUntil(t, waitTimeout, func() bool {
		runtime.GC()
		return testutil.CountOwnFDs(t) <= base
	}, "fds back to %d", base)
}

func TestFindSPS(t *testing.T) {
	sps := []byte{0x64, 0x00, 0x1f, 0xac}
	au := append([]byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67}, sps...)
	au = append(au, 0, 0, 1, 0x68, 0xee, 0, 0, 1, 0x65, 0x88)
	got := findSPS(au)
	require.Equal(t, sps, got[:len(sps)])
	require.Equal(t, "avc1.64001f", codecString(got))
	require.Nil(t, findSPS([]byte{0, 0, 1, 0x41, 0x9a, 0, 0, 1, 0x67, 1, 2, 3}), "SPS after a slice does not count")
	require.Nil(t, findSPS(nil))
	require.True(t, strings.HasPrefix(codecString([]byte{0x42, 0xc0, 0x1e}), "avc1.42c01e"))
}

// TestDescription checks the descriptions of the sources and encoders this
// machine cannot run.
func TestDescription(t *testing.T) {
	cfg := Config{Width: 1280, Height: 720}
	require.NoError(t, cfg.Validate())
	desc := func(srcSpec, enc, io string) string {
		src, err := parseSource(srcSpec)
		require.NoError(t, err)
		return description(&cfg, src, enc, "", false, io)
	}
	d := desc("v4l2:/dev/video3", "v4l2h264enc", "dmabuf")
	require.Contains(t, d, "v4l2src name=fh_src device=/dev/video3 io-mode=dmabuf ! videoconvert ! videoscale ! capsfilter")
	require.Contains(t, d, `v4l2h264enc name=fh_enc extra-controls="controls,video_bitrate=4000000,h264_i_frame_period=60"`)
	require.Contains(t, desc("v4l2:/dev/video3", "", "mmap"), "io-mode=mmap")
	require.NotContains(t, desc("v4l2:/dev/video3", "", "mmap"), "appsrc", "no encoder, no encoded branch")

	d = desc("jetson-csi:2", "nvv4l2h264enc", "")
	require.Contains(t, d, "nvarguscamerasrc name=fh_src sensor-id=2 ! video/x-raw(memory:NVMM),format=NV12,width=1280,height=720,framerate=30/1 ! nvvidconv ! capsfilter")
	require.Contains(t, d, "nvvidconv ! video/x-raw(memory:NVMM),format=NV12 ! nvv4l2h264enc name=fh_enc bitrate=4000000 iframeinterval=60 idrinterval=60")
	sinkCaps := `capsfilter name=fh_caps caps="video/x-raw,format=NV12`
	if adoptNVMM { // built with the jetson tag: NVMM reaches the appsink
		sinkCaps = `capsfilter name=fh_caps caps="video/x-raw(memory:NVMM),format=NV12`
	}
	require.Contains(t, d, "nvvidconv ! "+sinkCaps)

	d = desc("test", "x264enc", "")
	require.Contains(t, d, "x264enc name=fh_enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max=60 bitrate=4000")
	require.Contains(t, d, "h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=fh_h264")
	require.NotContains(t, d, " tee ", "see the package documentation")
	require.Contains(t, desc("test", "openh264enc", ""), "openh264enc name=fh_enc bitrate=4000000 gop-size=60")

	// An rtsp:// source: the raw branch is the on-demand decoder, nothing is encoded.
	cam := func(c Config, decoder string) string {
		require.NoError(t, c.Validate())
		src, err := parseSource(c.Source)
		require.NoError(t, err)
		return description(&c, src, "", decoder, false, "")
	}
	d = cam(Config{Source: "rtsp://u:secret@cam.local/live"}, "avdec_h264")
	require.Contains(t, d, `appsrc name=fh_decsrc is-live=true format=time`)
	require.Contains(t, d, `caps="video/x-h264,stream-format=byte-stream,alignment=au" ! h264parse ! avdec_h264 name=fh_dec ! videoconvert ! videoscale ! `+
		`capsfilter name=fh_caps caps="video/x-raw,format=NV12" ! appsink name=fh_raw`)
	require.NotContains(t, d, "secret")
	require.NotContains(t, d, "fh_enc")
	require.Contains(t, cam(Config{Source: "rtsp://cam.local/live", Width: 640, Height: 360}, "vah264dec"),
		`vah264dec name=fh_dec ! videoconvert ! videoscale ! capsfilter name=fh_caps caps="video/x-raw,format=NV12,width=640,height=360"`)
	d = cam(Config{Source: "rtsp://cam.local/live"}, "nvv4l2decoder")
	require.Contains(t, d, "nvv4l2decoder name=fh_dec ! nvvidconv ! "+strings.TrimSuffix(sinkCaps, `,format=NV12`))
}
