package snapshot_test

import (
	"context"
	"errors"
	"image/jpeg"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/consumers/snapshot"
	"github.com/framehub/framehub/internal/clock"
)

// encoders lists the encoders this machine has.
func encoders(t *testing.T) []string {
	if _, err := exec.LookPath("gst-launch-1.0"); err != nil {
		t.Log("gst-launch-1.0 not installed: testing the go encoder only")
		return []string{snapshot.EncoderGo}
	}
	return []string{snapshot.EncoderGo, snapshot.EncoderGst}
}

// TestPattern takes full-size and scaled snapshots of the static pattern at
// 1920x1080 with each encoder and compares their pixels with the pattern.
func TestPattern(t *testing.T) {
	p := startProducer(t, producerOpts{Width: 1920, Height: 1080, FPS: 15})
	s := startService(t, p, snapshot.Config{})
	for _, enc := range encoders(t) {
		for _, c := range []struct {
			name string
			req  snapshot.Request
			w, h int
		}{
			{"full", snapshot.Request{}, 1920, 1080},
			{"scale 640", snapshot.Request{Scale: 640}, 640, 360},
			{"960x540 q95", snapshot.Request{Width: 960, Height: 540, Quality: 95}, 960, 540},
			{"odd ratio 500x300", snapshot.Request{Width: 500, Height: 300}, 500, 300},
		} {
			t.Run(enc+" "+c.name, func(t *testing.T) {
				c.req.Encoder = enc
				st, data := s.take(t, c.req)
				require.Equal(t, enc, st.Encoder)
				require.Equal(t, c.w, st.Width)
				require.Equal(t, c.h, st.Height)
				require.Equal(t, len(data), st.Bytes)
				require.False(t, st.Durable, "the answer comes before the file is durable")
				ly, lc := patternError(t, data, c.w, c.h, 1920, 1080)
				t.Logf("%s %dx%d: %d bytes, encode %.1f ms, lease hold %.1f ms, mean abs error Y %.2f, CbCr %.2f",
					enc, c.w, c.h, st.Bytes, st.EncodeSeconds*1000, st.HoldSeconds*1000, ly, lc)
				require.Less(t, ly, 6.0, "luma differs from the pattern")
				require.Less(t, lc, 6.0, "chroma differs from the pattern (Cb/Cr swapped?)")
				// The daemon's own copy is the same JPEG.
				st = s.waitDurable(t, st.ID)
				file, err := os.ReadFile(st.Path)
				require.NoError(t, err)
				require.Equal(t, data, file)
			})
		}
	}
}

// TestAfter checks the "at or after" capture time.
func TestAfter(t *testing.T) {
	p := startProducer(t, producerOpts{Width: 320, Height: 240, FPS: 30})
	s := startService(t, p, snapshot.Config{Encoder: snapshot.EncoderGo})
	now := clock.Mono()
	after := now + int64(300*time.Millisecond)
	st, _ := s.take(t, snapshot.Request{After: after})
	require.GreaterOrEqual(t, st.CaptureMonoNS, after, "captured before the requested time")
	require.GreaterOrEqual(t, clock.Mono()-now, int64(300*time.Millisecond))
	// Without a time: a frame captured after the request arrived.
	before := clock.Mono()
	st, _ = s.take(t, snapshot.Request{})
	require.GreaterOrEqual(t, st.CaptureMonoNS, before)
	// A time in the past: the next frame.
	st, _ = s.take(t, snapshot.Request{After: 1})
	require.Greater(t, st.CaptureMonoNS, before)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, bad := range []snapshot.Request{
		{After: clock.Mono() + int64(time.Hour)}, {Scale: 321}, {Scale: 640}, {Width: 100}, {Quality: 101},
		{Encoder: "nvjpeg"}, {Scale: 160, Width: 160, Height: 120},
	} {
		_, _, err := s.Client.Take(ctx, bad, false)
		var ae *snapshot.APIError
		require.ErrorAs(t, err, &ae, "%+v", bad)
		require.Equal(t, http.StatusBadRequest, ae.Code, "%+v: %v", bad, err)
		require.ErrorIs(t, err, snapshot.ErrInvalid)
	}
}

// stallWriter is a FileWriter whose first Write stalls (an SD card
// reallocating blocks) and which records what was written and synced.
type stallWriter struct {
	*snapshot.FileWriter
	stall time.Duration
	once  sync.Once

	mu      sync.Mutex
	written map[string]bool // name → synced since
}

func (w *stallWriter) Write(name string, data []byte) error {
	w.once.Do(func() { <-time.After(w.stall) }) // the simulated device stall
	if err := w.FileWriter.Write(name, data); err != nil {
		return err
	}
	w.mu.Lock()
	w.written[name] = false
	w.mu.Unlock()
	return nil
}

func (w *stallWriter) Sync() error {
	if err := w.FileWriter.Sync(); err != nil {
		return err
	}
	w.mu.Lock()
	for n := range w.written {
		w.written[n] = true
	}
	w.mu.Unlock()
	return nil
}

func (w *stallWriter) synced(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written[name]
}

// TestStallingStorage: with a writer that stalls for 3 s, 20 back-to-back
// requests each answer in under 100 ms, and all 20 files become durable.
func TestStallingStorage(t *testing.T) {
	p := startProducer(t, producerOpts{Width: 320, Height: 240, FPS: 60})
	dir := t.TempDir()
	fw, err := snapshot.NewFileWriter(dir)
	require.NoError(t, err)
	w := &stallWriter{FileWriter: fw, stall: 3 * time.Second, written: map[string]bool{}}
	s := startService(t, p, snapshot.Config{Dir: dir, Writer: w})
	s.take(t, snapshot.Request{Encoder: snapshot.EncoderGo}) // the stalled one; also warms the connection
	start := time.Now()
	var ids []string
	var worst time.Duration
	for i := range 20 {
		t0 := time.Now()
		st, data := s.take(t, snapshot.Request{})
		took := time.Since(t0)
		worst = max(worst, took)
		require.Less(t, took, 100*time.Millisecond, "request %d took %v while the storage stalls", i, took)
		require.NotEmpty(t, data)
		ids = append(ids, st.ID)
	}
	t.Logf("20 requests during the stall: worst %v, all answered %v after the stall began", worst, time.Since(start))
	require.Less(t, time.Since(start), 3*time.Second, "the requests must all answer within the stall")
	for _, id := range ids {
		st := s.waitDurable(t, id)
		require.True(t, w.synced(filepath.Base(st.Path)), "%s reported durable before its directory fsync", st.Path)
		f, err := os.Open(st.Path)
		require.NoError(t, err)
		_, err = jpeg.Decode(f)
		f.Close()
		require.NoError(t, err, st.Path)
	}
}

// gateWriter blocks every write until open is closed.
type gateWriter struct {
	*snapshot.FileWriter
	open chan struct{}
}

func (w *gateWriter) Write(name string, data []byte) error {
	<-w.open
	return w.FileWriter.Write(name, data)
}

// TestQueueFull: with the writer stuck, the queue fills; the next request
// gets 503 "storage busy"; every accepted snapshot is written afterwards.
func TestQueueFull(t *testing.T) {
	p := startProducer(t, producerOpts{Width: 320, Height: 240, FPS: 30})
	dir := t.TempDir()
	fw, err := snapshot.NewFileWriter(dir)
	require.NoError(t, err)
	w := &gateWriter{FileWriter: fw, open: make(chan struct{})}
	s := startService(t, p, snapshot.Config{Dir: dir, Writer: w, QueueSize: 4})
	var ids []string
	for range 4 {
		st, _ := s.take(t, snapshot.Request{})
		ids = append(ids, st.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	t0 := time.Now()
	_, _, err = s.Client.Take(ctx, snapshot.Request{}, true)
	var ae *snapshot.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusServiceUnavailable, ae.Code)
	require.Equal(t, "storage busy", ae.Short)
	require.Contains(t, ae.Reason, "queue of 4")
	require.ErrorIs(t, err, snapshot.ErrBusy)
	t.Logf("refused in %v: %v", time.Since(t0), err)
	require.Equal(t, 4, s.Svc.Health().QueueDepth)
	m := s.metrics(t)
	require.Equal(t, 1.0, m[`framehub_snapshot_failures_total{reason="storage_busy"}`])
	require.Equal(t, 4.0, m[`framehub_snapshot_queue_depth`])

	close(w.open)
	for _, id := range ids {
		st := s.waitDurable(t, id)
		require.FileExists(t, st.Path)
	}
	s.take(t, snapshot.Request{}) // room again
}

// TestLeaseHold: the lease on a chosen frame lasts no longer than its
// encode (plus a small margin), and the producer sees no frame in flight
// while the daemon is idle.
func TestLeaseHold(t *testing.T) {
	p := startProducer(t, producerOpts{Width: 1280, Height: 720, FPS: 30})
	s := startService(t, p, snapshot.Config{})
	const margin = 25 * time.Millisecond
	var n int
	var maxHold float64
	for _, enc := range encoders(t) {
		for i := range 5 {
			req := snapshot.Request{Encoder: enc}
			if i%2 == 1 {
				req.Scale = 640
			}
			st, _ := s.take(t, req)
			n++
			maxHold = max(maxHold, st.HoldSeconds*1000)
			t.Logf("%s %dx%d: encode %.1f ms, lease hold %.1f ms", enc, st.Width, st.Height, st.EncodeSeconds*1000, st.HoldSeconds*1000)
			require.LessOrEqual(t, st.HoldSeconds*1000, st.EncodeSeconds*1000+float64(margin.Milliseconds()),
				"the lease outlived the encode by more than %v", margin)
		}
	}
	stats := s.Svc.Stats()
	require.LessOrEqual(t, stats.MaxHoldOverEncode, margin)
	m := s.metrics(t)
	require.Equal(t, float64(n), m["framehub_snapshot_lease_hold_seconds_count"])
	encodeSum := 0.0
	for _, enc := range encoders(t) {
		encodeSum += m[`framehub_snapshot_encode_seconds_sum{encoder="`+enc+`"}`]
	}
	require.LessOrEqual(t, m["framehub_snapshot_lease_hold_seconds_sum"], encodeSum+float64(n)*margin.Seconds())

	// The producer's view: idle, the consumer holds nothing. A frame is in
	// flight only between its delivery and its release at once (~0.2 ms of
	// every 33 ms), so nearly every sample must see 0.
	require.Eventually(t, func() bool { return p.session(t).InFlight == 0 }, waitTimeout, time.Millisecond)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	busy, samples := 0, 0
	for range 300 {
		<-tick.C
		info := p.session(t)
		require.LessOrEqual(t, info.InFlight, 1)
		if info.InFlight > 0 {
			busy++
		}
		samples++
	}
	t.Logf("producer's view while idle: a frame in flight in %d of %d samples; session %+v", busy, samples, p.session(t))
	require.Less(t, busy, samples/5)
	ps := p.Stream.Stats()
	t.Logf("producer: max lease hold %v, mean %v over %d releases; consumer's max hold %.1f ms",
		time.Duration(ps.MaxHoldNanos), time.Duration(ps.HoldNanos/max(ps.Released, 1)), ps.Released, maxHold)
	// The producer counts from sending the frame to reading the release:
	// socket transit and wake-ups on top of the consumer's hold; the
	// margin covers a stall of this shared machine, nothing more.
	require.LessOrEqual(t, time.Duration(ps.MaxHoldNanos), time.Duration(maxHold*float64(time.Millisecond))+250*time.Millisecond,
		"the producer saw a lease held much longer than the consumer reports")
	// Read now, not with stats above: back-to-back snapshots may each have
	// taken the next frame, the idle ones came during the sampling.
	require.Greater(t, s.Svc.Stats().Received, uint64(n), "idle frames are received and released")
	require.Equal(t, 0, s.Svc.Stats().Unreleased)
}

// TestNotifications: a durable snapshot is announced by the webhook and the
// event socket.
func TestNotifications(t *testing.T) {
	p := startProducer(t, producerOpts{Width: 320, Height: 240})
	hooks := make(chan snapshot.Event, 8)
	hook := newWebhook(t, hooks)
	sock, events := listenEvents(t)
	s := startService(t, p, snapshot.Config{Webhook: hook, EventSocket: sock})
	st, _ := s.take(t, snapshot.Request{})
	for _, c := range []<-chan snapshot.Event{hooks, events} {
		select {
		case ev := <-c:
			require.Equal(t, "snapshot.durable", ev.Event)
			require.Equal(t, st.ID, ev.ID)
			require.True(t, ev.Durable)
			require.Equal(t, st.Path, ev.Path)
		case <-time.After(waitTimeout):
			t.Fatal("no notification")
		}
	}
}

// enospcWriter fails every write with ENOSPC while full is set.
type enospcWriter struct {
	*snapshot.FileWriter
	mu   sync.Mutex
	full bool
}

func (w *enospcWriter) Write(name string, data []byte) error {
	w.mu.Lock()
	full := w.full
	w.mu.Unlock()
	if full {
		return &os.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
	}
	return w.FileWriter.Write(name, data)
}

// TestStorageFailure: ENOSPC is retried, then reported failed; health says
// so; the daemon goes on and recovers.
func TestStorageFailure(t *testing.T) {
	p := startProducer(t, producerOpts{Width: 320, Height: 240})
	dir := t.TempDir()
	fw, err := snapshot.NewFileWriter(dir)
	require.NoError(t, err)
	w := &enospcWriter{FileWriter: fw, full: true}
	hooks := make(chan snapshot.Event, 8)
	s := startService(t, p, snapshot.Config{Dir: dir, Writer: w, WriteRetries: 2, RetryBackoff: time.Millisecond, Webhook: newWebhook(t, hooks)})
	st, _ := s.take(t, snapshot.Request{})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	st, err = s.Client.Status(ctx, st.ID, waitTimeout)
	require.NoError(t, err)
	require.Equal(t, snapshot.StateFailed, st.State)
	require.Equal(t, 3, st.Attempts)
	require.Contains(t, st.Error, "no space left on device")
	select {
	case ev := <-hooks:
		require.Equal(t, "snapshot.failed", ev.Event)
	case <-time.After(waitTimeout):
		t.Fatal("no failure notification")
	}
	h, err := s.Client.Health(ctx)
	require.NoError(t, err)
	require.False(t, h.OK)
	require.Equal(t, "failing", h.Storage)
	m := s.metrics(t)
	require.Equal(t, 3.0, m[`framehub_snapshot_failures_total{reason="write_enospc"}`])
	require.Equal(t, 1.0, m[`framehub_snapshot_failures_total{reason="gave_up"}`])

	w.mu.Lock()
	w.full = false
	w.mu.Unlock()
	st, _ = s.take(t, snapshot.Request{})
	s.waitDurable(t, st.ID)
	require.True(t, s.Svc.Health().OK, "healthy again once a write succeeds")
}

// TestProducerRestart: the daemon resubscribes when the producer restarts.
func TestProducerRestart(t *testing.T) {
	p := startProducer(t, producerOpts{Width: 320, Height: 240})
	s := startService(t, p, snapshot.Config{ReconnectMax: 200 * time.Millisecond})
	s.take(t, snapshot.Request{})
	p.Stop(t)
	require.Eventually(t, func() bool { return !s.Svc.Health().Connected }, waitTimeout, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, _, err := s.Client.Take(ctx, snapshot.Request{}, false)
	require.ErrorIs(t, err, snapshot.ErrNotConnected)
	h, err := s.Client.Health(ctx)
	require.NoError(t, err)
	require.False(t, h.OK)

	startProducer(t, producerOpts{Width: 320, Height: 240, Addr: p.Addr})
	require.Eventually(t, func() bool { return s.Svc.Health().OK }, waitTimeout, time.Millisecond)
	st, data := s.take(t, snapshot.Request{})
	ly, _ := patternError(t, data, 320, 240, 320, 240)
	require.Less(t, ly, 6.0)
	s.waitDurable(t, st.ID)
}

// TestClientErrors: a daemon that is not there is named with its address.
func TestClientErrors(t *testing.T) {
	c := snapshot.NewClient("unix:/nonexistent/admin.sock")
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, _, err := c.Take(ctx, snapshot.Request{}, false)
	var re *snapshot.ReachError
	require.True(t, errors.As(err, &re), "%v", err)
	require.EqualError(t, err, "cannot reach framehub-snapshot at unix:/nonexistent/admin.sock: no such file or directory")
}

// TestConcurrentRequests: simultaneous requests are served from shared
// frames (one encode per distinct encoder, size and quality), each with its
// own id and file.
func TestConcurrentRequests(t *testing.T) {
	p := startProducer(t, producerOpts{Width: 640, Height: 480, FPS: 30})
	s := startService(t, p, snapshot.Config{})
	encs := encoders(t)
	const n = 8
	var wg sync.WaitGroup
	sts := make([]snapshot.Status, n)
	errs := make([]error, n)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	after := clock.Mono() + int64(500*time.Millisecond) // all wait for the same frame
	for i := range n {
		wg.Go(func() {
			req := snapshot.Request{After: after, Encoder: encs[i%len(encs)]}
			if i%4 >= 2 {
				req.Scale = 320
			}
			sts[i], _, errs[i] = s.Client.Take(ctx, req, true)
		})
	}
	wg.Wait()
	ids, seqs := map[string]bool{}, map[uint64]bool{}
	for i := range n {
		require.NoError(t, errs[i])
		require.GreaterOrEqual(t, sts[i].CaptureMonoNS, after)
		ids[sts[i].ID] = true
		seqs[sts[i].Seq] = true
	}
	require.Len(t, ids, n, "every request has its own snapshot")
	// One encode per frame, encoder, size and quality: the requests that
	// share all four share one encode. They all asked for the same frame;
	// one that reached the service after that frame was taken gets a later
	// one, with an encode of its own.
	type encode struct {
		seq           uint64
		encoder       string
		width, height int
		quality       int
	}
	encodes := map[encode]bool{}
	for _, st := range sts {
		encodes[encode{st.Seq, st.Encoder, st.Width, st.Height, st.Quality}] = true
	}
	t.Logf("%d requests served from %d frame(s) with %d encodes", n, len(seqs), len(encodes))
	m := s.metrics(t)
	require.Equal(t, float64(len(seqs)), m["framehub_snapshot_lease_hold_seconds_count"], "one lease hold per frame used")
	encoded := 0.0
	for _, enc := range encs {
		encoded += m[`framehub_snapshot_encode_seconds_count{encoder="`+enc+`"}`]
	}
	require.Equal(t, float64(len(encodes)), encoded, "one encode per frame, encoder, size and quality")
	require.Less(t, len(encodes), n, "requests that share frame, encoder, size and quality share an encode")
	for _, st := range sts {
		s.waitDurable(t, st.ID)
	}
}
