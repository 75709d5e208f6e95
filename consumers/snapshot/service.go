package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/sdk"
)

// Config configures a Service. Zero values take the defaults given.
type Config struct {
	// Producer is the producer's socket: a path or @name. Required.
	Producer string
	// Stream is the raw NV12 stream to snapshot. It defaults to "raw".
	Stream string
	// Dir is where snapshot files go. It defaults to "snapshots" and is
	// created if missing.
	Dir string
	// Writer stores the files. It defaults to a FileWriter on Dir (temp
	// file, fsync, rename, fsync of the directory). Dir is still where the
	// reported paths point and what the start-up scan for retention reads.
	Writer Writer

	// Encoder is the default encoder: EncoderGst or EncoderGo. It defaults
	// to EncoderGst when gst-launch-1.0 is found, else EncoderGo.
	Encoder string
	// GstLaunch is the gst-launch-1.0 binary. It defaults to the one on $PATH.
	GstLaunch string
	// Quality is the default JPEG quality, 1..100. It defaults to 85.
	Quality int

	// QueueSize bounds the snapshots taken and not yet durable; beyond it
	// requests fail with ErrBusy. It defaults to 32.
	QueueSize int
	// KeepCount and KeepBytes bound the snapshots kept in Dir (the oldest
	// are deleted first; the newest is always kept). 0 means no bound.
	KeepCount int
	KeepBytes int64
	// WriteRetries is how many times a failed write or fsync is retried,
	// waiting RetryBackoff, then twice as long each time. It defaults to 3;
	// -1 means no retry. RetryBackoff defaults to 250 ms.
	WriteRetries int
	RetryBackoff time.Duration
	// DrainTimeout bounds how long Run goes on writing accepted snapshots
	// after its context is done. It defaults to 10 seconds.
	DrainTimeout time.Duration

	// FrameTimeout bounds the wait for a frame captured at or after the
	// requested time. It defaults to 5 seconds.
	FrameTimeout time.Duration
	// MaxHold is the lease deadline asked of the producer: the longest an
	// encode may hold a frame. It defaults to 10 seconds.
	MaxHold time.Duration
	// ReconnectMax caps the backoff between attempts to reach the
	// producer. It defaults to 2 seconds.
	ReconnectMax time.Duration

	// Webhook, when set, receives every Event as a JSON POST.
	Webhook string
	// EventSocket, when set, is a Unix datagram socket path that receives
	// every Event as one JSON datagram.
	EventSocket string

	// Logger receives the logs. It defaults to slog.Default().
	Logger *slog.Logger
}

// Defaults returns the configuration of the defaults given on each field
// (Producer, which is required, and the fields looked up when used,
// empty): the values New gives zero fields, and those of
// framehub-snapshot's flags.
func Defaults() Config {
	return Config{
		Stream: "raw", Dir: "snapshots", Quality: 85, QueueSize: 32, WriteRetries: 3, RetryBackoff: 250 * time.Millisecond,
		DrainTimeout: 10 * time.Second, FrameTimeout: 5 * time.Second, MaxHold: 10 * time.Second, ReconnectMax: 2 * time.Second,
	}
}

func (c *Config) setDefaults() error {
	if c.Producer == "" {
		return errors.New("snapshot: config: Producer (the producer's socket) is required")
	}
	d := Defaults()
	if c.Stream == "" {
		c.Stream = d.Stream
	}
	if c.Dir == "" {
		c.Dir = d.Dir
	}
	if c.Quality == 0 {
		c.Quality = d.Quality
	}
	if c.Quality < 1 || c.Quality > 100 {
		return fmt.Errorf("snapshot: config: quality %d is not in 1..100", c.Quality)
	}
	if c.QueueSize == 0 {
		c.QueueSize = d.QueueSize
	}
	if c.QueueSize < 1 || c.KeepCount < 0 || c.KeepBytes < 0 {
		return fmt.Errorf("snapshot: config: queue %d must be ≥ 1, keep-count %d and keep-bytes %d ≥ 0", c.QueueSize, c.KeepCount, c.KeepBytes)
	}
	switch {
	case c.WriteRetries == 0:
		c.WriteRetries = d.WriteRetries
	case c.WriteRetries < 0:
		c.WriteRetries = 0
	}
	def := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	def(&c.RetryBackoff, d.RetryBackoff)
	def(&c.DrainTimeout, d.DrainTimeout)
	def(&c.FrameTimeout, d.FrameTimeout)
	def(&c.MaxHold, d.MaxHold)
	def(&c.ReconnectMax, d.ReconnectMax)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Service is the snapshot consumer: a subscription to the producer's raw
// stream, the encoders, the write queue and its notifications. Create it
// with New, run it with Run, trigger snapshots with Take or through
// Handler (the admin HTTP API).
type Service struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	grab    *grabber
	store   *store
	notify  *notifier
	health  *admin.HealthClock
	started time.Time

	mu  sync.Mutex
	gst *GstEncoder // created on first use unless it is the default
}

// New checks cfg, creates the snapshot directory and scans it.
func New(cfg Config) (*Service, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger, health: admin.NewHealthClock(), started: time.Now()}
	switch cfg.Encoder {
	case "":
		if gst, err := NewGstEncoder(cfg.GstLaunch, s.log); err == nil {
			s.cfg.Encoder, s.gst = EncoderGst, gst
		} else {
			s.log.Info("gst-launch-1.0 not found: encoding with image/jpeg", "err", err)
			s.cfg.Encoder = EncoderGo
		}
	case EncoderGo:
	case EncoderGst:
		gst, err := NewGstEncoder(cfg.GstLaunch, s.log)
		if err != nil {
			return nil, err
		}
		s.gst = gst
	default:
		return nil, fmt.Errorf("snapshot: config: unknown encoder %q (valid: %s, %s)", cfg.Encoder, EncoderGo, EncoderGst)
	}
	if cfg.Writer == nil {
		fw, err := NewFileWriter(cfg.Dir)
		if err != nil {
			return nil, err
		}
		s.cfg.Writer = fw
	}
	s.m = newMetrics(cfg.QueueSize, func() bool { return s.grab.isConnected() })
	s.grab = newGrabber(cfg.Producer, sdk.Options{
		Stream: cfg.Stream, Name: "framehub-snapshot", MaxInFlight: 1, MaxHold: cfg.MaxHold,
		Policy: sdk.PolicyLatest, Reconnect: true, ReconnectMin: 100 * time.Millisecond, ReconnectMax: cfg.ReconnectMax, Logger: s.log,
	}, s.log, s.m)
	s.notify = newNotifier(s.log, s.m, cfg.Webhook, cfg.EventSocket)
	st, err := newStore(storeConfig{
		dir: cfg.Dir, w: s.cfg.Writer, capacity: cfg.QueueSize, keepCount: cfg.KeepCount, keepBytes: cfg.KeepBytes,
		retries: s.cfg.WriteRetries, backoff: cfg.RetryBackoff, log: s.log, m: s.m, notify: s.notify.notify,
	})
	if err != nil {
		if s.gst != nil {
			s.gst.Close()
		}
		return nil, err
	}
	s.store = st
	return s, nil
}

// Run serves until ctx is done (call it once): it subscribes to the producer (and
// resubscribes when it restarts), writes accepted snapshots and sends
// notifications. After ctx is done it goes on writing what was accepted,
// for at most Config.DrainTimeout, then stops the encoders.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var grabErr error
	wg.Go(func() {
		grabErr = s.grab.run(gctx)
		cancel() // a failed subscription stops the service
	})
	nctx, stopNotify := context.WithCancel(context.Background())
	var nwg sync.WaitGroup
	nwg.Go(func() { s.notify.run(nctx) })
	if s.cfg.Encoder == EncoderGst {
		wg.Go(func() { s.warm(gctx) })
	}
	s.store.run(gctx, s.cfg.DrainTimeout)
	wg.Wait()
	stopNotify() // after the store: its last events are queued by now
	nwg.Wait()
	s.mu.Lock()
	if s.gst != nil {
		s.gst.Close()
	}
	s.mu.Unlock()
	return grabErr
}

// warm starts the default gst child once the frame size is known.
func (s *Service) warm(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-s.grab.connected:
	}
	w, h := s.grab.frameSize()
	t0 := time.Now()
	if err := s.gst.Warm(ctx, w, h, s.cfg.Quality); err != nil {
		s.log.Error("gst encoder does not work; snapshots with it will fail (use -encoder go)", "err", err)
		return
	}
	s.log.Info("gst encoder ready", "size", fmt.Sprintf("%dx%d", w, h), "quality", s.cfg.Quality, "took", time.Since(t0))
}

// Request describes one snapshot. Zero values take the defaults.
type Request struct {
	// Quality is the JPEG quality, 1..100; 0 takes Config.Quality.
	Quality int
	// Scale is the output width; the height keeps the frame's aspect
	// ratio. Or Width and Height give both. Neither: the frame's size.
	// Sizes are even and at most the frame's (box filter, no upscaling).
	Scale         int
	Width, Height int
	// After is a CLOCK_MONOTONIC time in ns: the snapshot is of the first
	// frame captured at or after it. 0 means when the request arrives.
	After int64
	// Encoder is EncoderGo or EncoderGst; "" takes Config.Encoder.
	Encoder string
}

// maxAfter is how far in the future a request's capture time may be.
const maxAfter = 60 * time.Second

// Take takes a snapshot: it waits for the first frame captured at or after
// the requested time, encodes it, queues the JPEG for writing and returns
// at once, with the status (not durable yet) and the JPEG. Errors wrap
// ErrInvalid, ErrBusy, ErrNotConnected, ErrNoFrame or ErrStopping, or are
// encoder failures.
func (s *Service) Take(ctx context.Context, req Request) (Status, []byte, error) {
	st, data, err := s.take(ctx, req)
	result := resultOK
	switch {
	case err == nil:
	case errors.Is(err, ErrInvalid):
		result = resultInvalid
	case errors.Is(err, ErrBusy):
		result = resultBusy
		s.m.failures.WithLabelValues("storage_busy").Inc()
	case errors.Is(err, ErrNotConnected):
		result = resultNotConnected
		s.m.failures.WithLabelValues("not_connected").Inc()
	case errors.Is(err, ErrNoFrame):
		result = resultNoFrame
		s.m.failures.WithLabelValues("no_frame").Inc()
	case ctx.Err() != nil:
		result = resultCanceled
	default:
		result = resultError
		s.m.failures.WithLabelValues("encode").Inc()
	}
	s.m.requests.WithLabelValues(result).Inc()
	if err != nil {
		s.log.Warn("snapshot refused", "result", result, "err", err)
	}
	return st, data, err
}

func (s *Service) take(ctx context.Context, req Request) (Status, []byte, error) {
	now := clock.Mono()
	enc, quality, err := s.resolve(req)
	if err != nil {
		return Status{}, nil, err
	}
	if !s.grab.isConnected() {
		return Status{}, nil, fmt.Errorf("%w at %s", ErrNotConnected, s.cfg.Producer)
	}
	fw, fh := s.grab.frameSize()
	w, h, err := OutputSize(req, fw, fh)
	if err != nil {
		return Status{}, nil, err
	}
	after := req.After
	if after == 0 {
		after = now
	}
	if ahead := time.Duration(after - now); ahead > maxAfter {
		return Status{}, nil, fmt.Errorf("%w: after %d is %v in the future (at most %v)", ErrInvalid, after, ahead, maxAfter)
	}
	sl, err := s.store.reserve()
	if err != nil {
		return Status{}, nil, err
	}
	timeout := s.cfg.FrameTimeout + max(0, time.Duration(after-now))
	gctx, cancel := context.WithTimeoutCause(ctx, timeout,
		fmt.Errorf("%w captured at or after %d within %v (producer %s)", ErrNoFrame, after, timeout, s.cfg.Producer))
	defer cancel()
	res := s.grab.grab(&grabReq{ctx: gctx, after: after, enc: enc, width: w, height: h, quality: quality, res: make(chan grabResult, 1)})
	if res.err != nil {
		sl.cancel()
		if ctx.Err() != nil {
			return Status{}, nil, ctx.Err()
		}
		return Status{}, nil, res.err
	}
	st := s.store.accept(sl, Status{
		Width: w, Height: h, Seq: res.seq, CaptureMonoNS: res.capture, CaptureTime: res.realtime.UTC(),
		Encoder: enc.Name(), Quality: quality, EncodeSeconds: res.encode.Seconds(), HoldSeconds: res.hold.Seconds(),
	}, res.jpeg)
	return st, res.jpeg, nil
}

// resolve picks the request's encoder and quality.
func (s *Service) resolve(req Request) (Encoder, int, error) {
	q := req.Quality
	if q == 0 {
		q = s.cfg.Quality
	}
	if q < 1 || q > 100 {
		return nil, 0, fmt.Errorf("%w: quality %d is not in 1..100", ErrInvalid, q)
	}
	name := req.Encoder
	if name == "" {
		name = s.cfg.Encoder
	}
	switch name {
	case EncoderGo:
		return GoEncoder{}, q, nil
	case EncoderGst:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.gst == nil {
			gst, err := NewGstEncoder(s.cfg.GstLaunch, s.log)
			if err != nil {
				return nil, 0, fmt.Errorf("%w: encoder gst unavailable: %w", ErrInvalid, err)
			}
			s.gst = gst
		}
		return s.gst, q, nil
	}
	return nil, 0, fmt.Errorf("%w: unknown encoder %q (valid: %s, %s)", ErrInvalid, name, EncoderGo, EncoderGst)
}

// OutputSize computes the snapshot size of req (Scale, or Width and Height)
// for a fw×fh frame; errors wrap ErrInvalid.
func OutputSize(req Request, fw, fh int) (int, int, error) {
	w, h := fw, fh
	switch {
	case req.Scale != 0 && (req.Width != 0 || req.Height != 0):
		return 0, 0, fmt.Errorf("%w: give scale or width and height, not both", ErrInvalid)
	case req.Scale != 0:
		w = req.Scale
		h = (fh*w/fw + 1) &^ 1 // nearest even height keeping the aspect ratio
	case req.Width != 0 || req.Height != 0:
		if req.Width == 0 || req.Height == 0 {
			return 0, 0, fmt.Errorf("%w: width %d and height %d must be given together (or use scale)", ErrInvalid, req.Width, req.Height)
		}
		w, h = req.Width, req.Height
	}
	if w < 2 || h < 2 || w%2 != 0 || h%2 != 0 || w > fw || h > fh {
		return 0, 0, fmt.Errorf("%w: size %dx%d must be even, ≥ 2 and at most the frame's %dx%d", ErrInvalid, w, h, fw, fh)
	}
	return w, h, nil
}

// Status returns the status of snapshot id; it fails with ErrUnknown.
func (s *Service) Status(id string) (Status, error) {
	st, _, ok := s.store.status(id)
	if !ok {
		return Status{}, fmt.Errorf("%w %q", ErrUnknown, id)
	}
	return st, nil
}

// Wait waits until snapshot id is durable or failed, or ctx is done, and
// returns its status then.
func (s *Service) Wait(ctx context.Context, id string) (Status, error) {
	_, done, ok := s.store.status(id)
	if !ok {
		return Status{}, fmt.Errorf("%w %q", ErrUnknown, id)
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	return s.Status(id)
}

// Health is the daemon's health, as GET /healthz reports it: the keys of
// every framehub daemon (admin.Health: ok, status, reason, since), then
// the service's. It is not OK when not subscribed to the producer
// ("not_connected") or when the last storage operation failed
// ("storage_failing").
type Health struct {
	admin.Health
	Connected  bool   `json:"connected"`
	Storage    string `json:"storage"` // "ok" or "failing"
	QueueDepth int    `json:"queue_depth"`
	QueueSize  int    `json:"queue_size"`
	Encoder    string `json:"encoder"`
	Producer   string `json:"producer"`
}

// Health reports the daemon's health.
func (s *Service) Health() Health {
	h := Health{Health: admin.Healthy(), Connected: s.grab.isConnected(), Storage: "ok", QueueDepth: s.store.queued(),
		QueueSize: s.cfg.QueueSize, Encoder: s.cfg.Encoder, Producer: s.cfg.Producer}
	if !s.store.healthy() {
		h.Storage = "failing"
		h.Fail("storage_failing", fmt.Sprintf("the last write to %s failed: snapshots are kept in the queue and retried", s.cfg.Dir))
	}
	if !h.Connected {
		h.Fail("not_connected", fmt.Sprintf("not subscribed to the producer at %s: no snapshot can be taken", s.cfg.Producer))
	}
	s.health.Stamp(&h.Health)
	return h
}

// Stats are counters for tests and status displays.
type Stats struct {
	Connected bool
	// Frames received from and released to the producer, and frames it
	// skipped for this consumer (while an encode held the budget).
	Received, Released, Dropped uint64
	// Unreleased is the number of frames held now (0 or 1).
	Unreleased int
	// MaxHoldOverEncode is the largest difference seen between a chosen
	// frame's lease hold time and the time spent encoding it.
	MaxHoldOverEncode time.Duration
	QueueDepth        int
}

// Stats returns the service's counters.
func (s *Service) Stats() Stats {
	cs := s.grab.stats()
	return Stats{
		Connected: s.grab.isConnected(), Received: cs.Received, Released: cs.Released, Dropped: cs.Dropped,
		Unreleased: cs.Unreleased, MaxHoldOverEncode: time.Duration(s.grab.holdOver.Load()), QueueDepth: s.store.queued(),
	}
}
