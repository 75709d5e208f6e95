package streamer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
)

// waitTimeout bounds every wait of these tests: generous, for a noisy
// two-core machine under the race detector. Nothing sleeps it away.
const waitTimeout = 10 * time.Second

// A real SPS/PPS pair (Baseline, 1280x720), so that SDP parsers are happy.
var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0f, 0x03, 0xc6, 0x0c, 0xa8}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
)

// startTestStreamer runs a streamer with no producer (its socket does not
// exist): the test feeds its hub. requestKey, when not nil, replaces the
// keyframe requests to the producer.
func startTestStreamer(t *testing.T, requestKey func(), mutate func(*Config)) *Streamer {
	t.Helper()
	o := Defaults()
	o.Socket = fmt.Sprintf("@framehub-streamer-test-no-producer-%d-%d", os.Getpid(), time.Now().UnixNano())
	o.RTSPAddr, o.UDPRTPAddr, o.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if mutate != nil {
		mutate(&o)
	}
	st, err := New(o, testutil.Logger(t, slog.LevelError))
	require.NoError(t, err)
	if requestKey != nil {
		st.cams[0].hub.requestKey = requestKey
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	select {
	case <-st.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("streamer ended before ready: %v", err)
	case <-time.After(waitTimeout):
		cancel()
		t.Fatalf("streamer not ready within %v", waitTimeout)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(waitTimeout):
			t.Errorf("streamer Run did not return within %v", waitTimeout)
		}
	})
	return st
}

// feeder publishes synthetic access units into a hub at 30 fps: a keyframe
// (SPS, PPS, IDR) every gop frames, and when forced (a keyframe request it
// honours). Frame n carries n in its payload and n/30 s as its PTS.
type feeder struct {
	h       *hub
	gop     int
	pad     int // extra bytes per frame
	force   atomic.Bool
	n       atomic.Int64 // frames published
	lastKey atomic.Int64
}

func startFeeder(t *testing.T, h *hub, gop int) *feeder {
	return startFeederPadded(t, h, gop, 0)
}

// startFeederPadded is startFeeder with frames pad bytes larger.
func startFeederPadded(t *testing.T, h *hub, gop, pad int) *feeder {
	t.Helper()
	f := newFeeder(gop, pad)
	f.start(t, h)
	return f
}

// newFeeder returns a feeder that start will run. Its requestKey may be
// called before then: a streamer started with it as its keyframe request
// can ask for one as soon as it attaches a sink, before start returns.
func newFeeder(gop, pad int) *feeder {
	f := &feeder{gop: gop, pad: pad}
	f.lastKey.Store(-1)
	return f
}

// requestKey makes the feeder's next frame a keyframe.
func (f *feeder) requestKey() { f.force.Store(true) }

// start publishes into h until the test ends.
func (f *feeder) start(t *testing.T, h *hub) {
	t.Helper()
	f.h = h
	h.setParams(testSPS, testPPS)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for n := 0; ; n++ {
			key := n%f.gop == 0 || f.force.Swap(false)
			f.h.received(time.Now())
			f.h.publish(testFrame(n, key, f.pad))
			if key {
				f.lastKey.Store(int64(n))
			}
			f.n.Store(int64(n + 1))
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
}

// testFrame builds access unit n: big enough that keyframes are
// fragmented (FU-A) and the parameter sets aggregated (STAP-A).
func testFrame(n int, key bool, pad int) *accessUnit {
	tag := []byte(strconv.Itoa(n) + ";")
	var nalus [][]byte
	if key {
		idr := append([]byte{0x65}, tag...)
		for len(idr) < 4000+pad {
			idr = append(idr, 0xaa)
		}
		nalus = [][]byte{testSPS, testPPS, idr}
	} else {
		p := append([]byte{0x41}, tag...)
		for len(p) < 600+pad {
			p = append(p, 0xbb)
		}
		nalus = [][]byte{p}
	}
	size := 0
	for _, x := range nalus {
		size += len(x)
	}
	pts := int64(n) * int64(time.Second) / 30
	return &accessUnit{nalus: nalus, size: size, key: key, pts: pts, ntp: time.Now(), recv: time.Now()}
}

// frameNumber reads n back from an access unit of testFrame.
func frameNumber(nalus [][]byte) (n int, key bool, err error) {
	last := nalus[len(nalus)-1]
	end := 1
	for end < len(last) && last[end] != ';' {
		end++
	}
	n, err = strconv.Atoi(string(last[1:end]))
	return n, last[0]&0x1f == naluIDR, err
}

// viewed is an access unit a test viewer received.
type viewed struct {
	n   int
	key bool
	ts  uint32
	at  time.Time
}

// rtspViewer is an in-process RTSP client (gortsplib).
type rtspViewer struct {
	c       *gortsplib.Client
	forma   *format.H264
	started time.Time

	mu     sync.Mutex
	frames []viewed
	errs   []error
	more   chan struct{} // capacity 1: a frame arrived
}

// play connects a viewer to url over tr; it is closed at cleanup.
func play(t *testing.T, url string, tr gortsplib.Transport) (*rtspViewer, error) {
	t.Helper()
	v := &rtspViewer{more: make(chan struct{}, 1), started: time.Now()}
	u, err := base.ParseURL(url)
	require.NoError(t, err)
	v.c = &gortsplib.Client{
		Scheme: u.Scheme, Host: u.Host, Transport: &tr, ReadTimeout: waitTimeout,
		OnPacketsLost: func(lost uint64) { v.fail(fmt.Errorf("%d packets lost", lost)) },
		OnDecodeError: func(err error) { v.fail(err) },
	}
	require.NoError(t, v.c.Start2())
	t.Cleanup(v.c.Close)
	desc, _, err := v.c.Describe(u)
	if err != nil {
		return nil, err
	}
	medi := desc.FindFormat(&v.forma)
	require.NotNil(t, medi, "no H.264 format in the SDP")
	dec, err := v.forma.CreateDecoder()
	require.NoError(t, err)
	if err := v.c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return nil, err
	}
	v.c.OnPacketRTP(medi, v.forma, func(pkt *rtp.Packet) {
		nalus, err := dec.Decode(pkt)
		if err != nil {
			return // more packets needed
		}
		n, key, err := frameNumber(nalus)
		if err != nil {
			v.fail(err)
			return
		}
		v.mu.Lock()
		v.frames = append(v.frames, viewed{n: n, key: key, ts: pkt.Timestamp, at: time.Now()})
		v.mu.Unlock()
		select {
		case v.more <- struct{}{}:
		default:
		}
	})
	_, err = v.c.Play(nil)
	require.NoError(t, err)
	return v, nil
}

func (v *rtspViewer) fail(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err)
}

// received returns the frames received so far and the errors seen.
func (v *rtspViewer) received() ([]viewed, []error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]viewed(nil), v.frames...), append([]error(nil), v.errs...)
}

// waitFrames waits until n frames arrived and returns them.
func (v *rtspViewer) waitFrames(t *testing.T, n int) []viewed {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		got, _ := v.received()
		if len(got) >= n {
			return got
		}
		select {
		case <-v.more:
		case <-deadline.C:
			t.Fatalf("viewer got %d frames within %v, want %d", len(got), waitTimeout, n)
		}
	}
}

// requireContinuous checks that frames start on a keyframe and follow each
// other with RTP timestamps 1/30 s apart.
func requireContinuous(t *testing.T, frames []viewed) {
	t.Helper()
	require.True(t, frames[0].key, "the first frame must be a keyframe, got frame %d", frames[0].n)
	for i := 1; i < len(frames); i++ {
		require.Equal(t, frames[i-1].n+1, frames[i].n, "frame %d follows frame %d", frames[i].n, frames[i-1].n)
		require.Equal(t, uint32(3000), frames[i].ts-frames[i-1].ts, "RTP timestamp step at frame %d", frames[i].n)
	}
}
