package streamer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
)

// publishStable is how long a publishing session must last for the next
// failure to retry at the shortest backoff again.
const publishStable = 10 * time.Second

// publishSinkID is the publisher's sink id (label viewer="publish").
const publishSinkID = "publish"

// publishTimeout bounds each RTSP request to the external server.
const publishTimeout = 5 * time.Second

// publisher pushes the stream to an external RTSP server (ANNOUNCE, SETUP,
// RECORD), for fan-out beyond this machine. It is a sink of the hub like a
// viewer, so a slow server costs only its own frames. When the server goes
// away or refuses, it retries with exponential backoff (1 s doubling up to
// Config.PublishBackoffMax); it re-announces when the stream's parameter
// sets change (a producer restarted with another resolution).
type publisher struct {
	o   *Config
	log *slog.Logger
	hub *hub

	connected atomic.Bool
	attempts  atomic.Uint64
	sink      atomic.Pointer[sink] // current session's, for metrics
}

func newPublisher(o *Config, log *slog.Logger, h *hub) *publisher {
	return &publisher{o: o, log: log.With("publish", redact(o.Publish)), hub: h}
}

// run publishes until ctx is done; it returns nil then.
func (p *publisher) run(ctx context.Context) error {
	backoff := time.Second
	for {
		if err := p.hub.waitParams(ctx); err != nil {
			return nil
		}
		began := time.Now()
		err := p.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errParamsChanged) {
			p.log.Info("publish: stream parameter sets changed; announcing again")
			continue
		}
		if time.Since(began) >= publishStable {
			backoff = time.Second
		}
		p.log.Warn("publish: failed; retrying", "retry_in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, p.o.PublishBackoffMax)
	}
}

// session publishes over one connection until it fails or ctx is done.
func (p *publisher) session(ctx context.Context) error {
	p.attempts.Add(1)
	sps, pps, gen := p.hub.params()
	desc := sdpDescription(sps, pps)
	tr := gortsplib.TransportTCP
	if p.o.PublishTransport == "udp" {
		tr = gortsplib.TransportUDP
	}
	c := &gortsplib.Client{
		Transport: &tr, ReadTimeout: publishTimeout, WriteTimeout: publishTimeout, WriteQueueSize: writeQueueSize,
		OnPacketsLost:     func(n uint64) { p.log.Debug("publish: packets lost", "lost", n) },
		OnDecodeError:     func(err error) { p.log.Debug("publish: undecodable packet", "err", err) },
		OnTransportSwitch: func(err error) { p.log.Debug("publish: transport switch", "err", err) },
	}
	u, err := base.ParseURL(p.o.Publish)
	if err != nil {
		return fmt.Errorf("publish URL %s: %w", redact(p.o.Publish), err)
	}
	c.Scheme, c.Host = u.Scheme, u.Host
	if err := c.Start2(); err != nil {
		return fmt.Errorf("publish to %s: %w", redact(p.o.Publish), err)
	}
	// Requests are bounded by publishTimeout; closing the client when ctx
	// ends cuts them short. Start2 only started the client's goroutine:
	// the connection is made by the first request.
	ended := make(chan struct{})
	go func() {
		_ = c.Wait()
		close(ended)
	}()
	stop := context.AfterFunc(ctx, c.Close)
	defer func() {
		stop()
		c.Close()
		<-ended
	}()
	if _, err := c.Announce(u, desc); err != nil {
		return fmt.Errorf("publish to %s: ANNOUNCE: %w", redact(p.o.Publish), err)
	}
	if err := c.SetupAll(u, desc.Medias); err != nil {
		return fmt.Errorf("publish to %s: SETUP: %w", redact(p.o.Publish), err)
	}
	if _, err := c.Record(); err != nil {
		return fmt.Errorf("publish to %s: RECORD: %w", redact(p.o.Publish), err)
	}

	p.log.Info("publish: recording", "transport", p.o.PublishTransport)
	s := newSink(publishSinkID, redact(p.o.Publish), p.o.PublishTransport, p.o.ViewerQueue)
	p.hub.attach(s)
	p.sink.Store(s)
	p.connected.Store(true)
	defer func() {
		p.connected.Store(false)
		p.hub.detach(s)
	}()

	enc, err := desc.Medias[0].Formats[0].(*format.H264).CreateEncoder()
	if err != nil {
		return fmt.Errorf("rtp encoder: %w", err)
	}
	media := desc.Medias[0]
	write := func(pkt *rtp.Packet, ntp time.Time) error {
		err := c.WritePacketRTPWithNTP(media, pkt, ntp)
		var full liberrors.ErrClientWriteQueueFull
		if errors.As(err, &full) {
			return errQueueFull
		}
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	werr := make(chan error, 1)
	go func() {
		werr <- runWriter(wctx, p.hub, s, enc, write, writerConfig{keyframeWait: p.o.KeyframeWait, gen: gen})
	}()
	select {
	case err = <-werr:
		cancel()
	case <-ctx.Done():
		cancel()
		err = <-werr
	case <-ended:
		cancel()
		<-werr
		err = c.Wait()
	}
	if err == nil && ctx.Err() == nil {
		err = errors.New("connection closed")
	}
	return err
}

// redact hides the password of a URL for logs.
func redact(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return u
	}
	return pu.Redacted()
}
