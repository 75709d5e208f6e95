package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/consumers/snapshot"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/synth"
)

// waitTimeout bounds every wait for something that should happen soon. It
// is generous because the machine is small, shared and runs the race
// detector; it is only ever a deadline, never slept away.
const waitTimeout = 15 * time.Second

// ---------------------------------------------------------------------------
// Producer, in the test process, serving the static synthetic pattern

// producerOpts are the producer's settings; Width and Height default to
// 640x480 here, and the pattern is always synth.PatternStatic.
type producerOpts = producertest.Options

type testProducer struct{ *producertest.Producer }

// startProducer runs a producer with a raw stream of synth.PatternStatic;
// Stop (also run at cleanup) stops it.
func startProducer(t *testing.T, o producerOpts) *testProducer {
	t.Helper()
	if o.Width == 0 {
		o.Width, o.Height = 640, 480
	}
	o.Pattern = synth.PatternStatic
	o.WaitTimeout = waitTimeout
	return &testProducer{producertest.StartProducer(t, o)}
}

// session returns the producer's view of the snapshot consumer.
func (p *testProducer) session(t *testing.T) producer.SessionInfo {
	t.Helper()
	s, ok := p.Session(func(s producer.SessionInfo) bool { return s.Name == "framehub-snapshot" })
	if !ok {
		t.Fatal("the snapshot consumer is not connected to the producer")
	}
	return s
}

// ---------------------------------------------------------------------------
// Snapshot service, in the test process, with its admin API on a Unix socket

type testService struct {
	Svc    *snapshot.Service
	Client *snapshot.Client
	Addr   string // unix:/path
	Dir    string
	stop   func()
}

// startService runs a snapshot service subscribed to p and waits until it
// is healthy. cfg.Producer and, when empty, cfg.Dir and cfg.Logger are
// filled in.
func startService(t *testing.T, p *testProducer, cfg snapshot.Config) *testService {
	t.Helper()
	cfg.Producer = p.Addr
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "snapshots")
	}
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger(t, slog.LevelWarn)
	}
	svc, err := snapshot.New(cfg)
	require.NoError(t, err)
	addr := "unix:" + filepath.Join(testutil.ShortDir(t), "admin.sock")
	ln, err := snapshot.Listen(addr)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runErr, serveErr := make(chan error, 1), make(chan error, 1)
	go func() { runErr <- svc.Run(ctx) }()
	go func() { serveErr <- svc.Serve(ctx, ln, svc.Handler()) }() // no admin.Guard: the test owns the socket
	s := &testService{Svc: svc, Client: snapshot.NewClient(addr), Addr: addr, Dir: cfg.Dir}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			s.Client.Close()
			cancel()
			for _, c := range []chan error{serveErr, runErr} {
				select {
				case err := <-c:
					require.NoError(t, err)
				case <-time.After(waitTimeout):
					t.Error("snapshot service did not stop")
				}
			}
		})
	}
	t.Cleanup(s.stop)
	require.Eventually(t, func() bool { return svc.Health().OK }, waitTimeout, 5*time.Millisecond,
		"the snapshot service did not become healthy: %+v", svc.Health())
	return s
}

// take asks for a snapshot through the admin API, with the standard deadline.
func (s *testService) take(t *testing.T, req snapshot.Request) (snapshot.Status, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	st, data, err := s.Client.Take(ctx, req, true)
	require.NoError(t, err)
	return st, data
}

// waitDurable waits until snapshot id is durable and returns its status.
func (s *testService) waitDurable(t *testing.T, id string) snapshot.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	st, err := s.Client.Status(ctx, id, waitTimeout)
	require.NoError(t, err)
	require.True(t, st.Durable, "snapshot %s not durable: %+v", id, st)
	return st
}

// metrics scrapes GET /metrics and returns the samples by name and labels,
// e.g. `framehub_snapshot_failures_total{reason="storage_busy"}`.
func (s *testService) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	out, err := testutil.ParseMetrics(httpGet(t, ctx, s.Addr, "/metrics"))
	require.NoError(t, err)
	return out
}

// ---------------------------------------------------------------------------
// Checking pixels

// patternError decodes a JPEG snapshot of a srcW×srcH static pattern,
// checks its size, and returns the mean absolute error of the luma and of
// the chroma over 400 sampled pixels, against the pattern box-filtered to
// the snapshot's size. Pixels whose source rows reach into the stamp (rows
// 0..7) or its JPEG blocks (to row 15) are not sampled.
func patternError(t *testing.T, data []byte, w, h, srcW, srcH int) (lumaErr, chromaErr float64) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(data))
	require.NoError(t, err, "not a JPEG")
	require.Equal(t, image.Rect(0, 0, w, h), img.Bounds(), "snapshot size")
	rng := rand.New(rand.NewPCG(1, 2))
	var sumY, sumC float64
	const n = 400
	for i := 0; i < n; {
		x, y := rng.IntN(w), rng.IntN(h)
		if y0, _ := snapshot.BoxBounds(y, h, srcH); y0 < 16 {
			continue
		}
		i++
		wantY := boxMean(x, y, w, h, srcW, srcH, func(sx, sy int) int { return int(synth.StaticY(sx, sy)) })
		cx, cy := x/2, y/2
		wantCb := boxMean(cx, cy, w/2, h/2, srcW/2, srcH/2, func(sx, sy int) int { cb, _ := synth.StaticUV(sx, sy); return int(cb) })
		wantCr := boxMean(cx, cy, w/2, h/2, srcW/2, srcH/2, func(sx, sy int) int { _, cr := synth.StaticUV(sx, sy); return int(cr) })
		var gy, gcb, gcr uint8
		if yc, ok := img.(*image.YCbCr); ok {
			gy, gcb, gcr = yc.Y[yc.YOffset(x, y)], yc.Cb[yc.COffset(x, y)], yc.Cr[yc.COffset(x, y)]
		} else {
			r, g, b, _ := img.At(x, y).RGBA()
			gy, gcb, gcr = color.RGBToYCbCr(uint8(r>>8), uint8(g>>8), uint8(b>>8))
		}
		sumY += abs(float64(gy) - wantY)
		sumC += (abs(float64(gcb)-wantCb) + abs(float64(gcr)-wantCr)) / 2
	}
	return sumY / n, sumC / n
}

// boxMean is the mean of at over the source box of output sample (x, y).
func boxMean(x, y, w, h, srcW, srcH int, at func(sx, sy int) int) float64 {
	x0, x1 := snapshot.BoxBounds(x, w, srcW)
	y0, y1 := snapshot.BoxBounds(y, h, srcH)
	sum := 0
	for sy := y0; sy < y1; sy++ {
		for sx := x0; sx < x1; sx++ {
			sum += at(sx, sy)
		}
	}
	return float64(sum) / float64((x1-x0)*(y1-y0))
}

func abs(v float64) float64 { return max(v, -v) }

// ---------------------------------------------------------------------------
// Misc

// httpGet GETs path from the admin API at addr (host:port or unix:/path)
// and returns the body.
func httpGet(t *testing.T, ctx context.Context, addr, path string) []byte {
	t.Helper()
	_, body, err := testutil.HTTPDo(ctx, addr, http.MethodGet, path, nil)
	require.NoError(t, err)
	return body
}

// newWebhook serves a webhook that forwards the events it receives; it
// returns its URL.
func newWebhook(t *testing.T, events chan<- snapshot.Event) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev snapshot.Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case events <- ev:
		default:
			t.Errorf("webhook: unexpected event %+v", ev)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// listenEvents listens on a Unix datagram socket and forwards the events
// it receives; it returns the socket's path.
func listenEvents(t *testing.T) (string, <-chan snapshot.Event) {
	t.Helper()
	path := filepath.Join(testutil.ShortDir(t), "events.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	events := make(chan snapshot.Event, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return // closed at cleanup
			}
			var ev snapshot.Event
			if err := json.Unmarshal(buf[:n], &ev); err != nil {
				t.Errorf("event socket: %v in %q", err, buf[:n])
				continue
			}
			select {
			case events <- ev:
			default:
				t.Errorf("event socket: unexpected event %+v", ev)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return path, events
}
