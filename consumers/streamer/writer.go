package streamer

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/pion/rtp"
)

// packetWriter sends one RTP packet of a sink; ntp is the wall-clock time of
// its frame (for RTCP sender reports). It returns errQueueFull when the
// transport had to drop the packet; any other error ends the sink.
type packetWriter func(pkt *rtp.Packet, ntp time.Time) error

var (
	// errQueueFull means a sink's transport queue overflowed: the sink
	// resynchronises at the next keyframe.
	errQueueFull = errors.New("transport write queue full")
	// errParamsChanged ends a publisher session whose announced parameter
	// sets are no longer the stream's.
	errParamsChanged = errors.New("stream parameter sets changed")
)

// writerConfig tunes runWriter.
type writerConfig struct {
	// keyframeWait is how long a new sink waits for a live keyframe before
	// it starts from the GOP cache (0: at once).
	keyframeWait time.Duration
	// gen, when not 0, is the parameter-set generation the sink announced:
	// an access unit of another generation ends the writer with
	// errParamsChanged.
	gen uint64
}

// runWriter sends s's access units as RTP packets until ctx is done (nil)
// or write fails (the error). The RTP timestamp is the access unit's PTS on
// the streamer's timeline (90 kHz) plus a random base per sink (RFC 3550
// §5.1), so a sink's timestamps stay continuous for as long as it lives,
// across producer restarts.
func runWriter(ctx context.Context, h *hub, s *sink, enc *rtph264.Encoder, write packetWriter, cfg writerConfig) error {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("random RTP timestamp base: %w", err)
	}
	base := binary.LittleEndian.Uint32(b[:])
	sendAU := func(au *accessUnit) error {
		pkts, err := enc.Encode(au.nalus)
		if err != nil {
			return fmt.Errorf("packetize access unit of %d bytes: %w", au.size, err)
		}
		ts := base + uint32(rtpTime(au.pts))
		n := 0
		for _, p := range pkts {
			p.Timestamp = ts
			if err := write(p, au.ntp); err != nil {
				return err
			}
			n += p.MarshalSize()
		}
		s.frames.Add(1)
		s.bytes.Add(uint64(n))
		return nil
	}
	send := func(batch []*accessUnit) error {
		for i, au := range batch {
			if cfg.gen != 0 && au.gen != cfg.gen {
				return errParamsChanged
			}
			err := sendAU(au)
			if errors.Is(err, errQueueFull) {
				h.resync(s, len(batch)-i)
				return nil
			}
			if err != nil {
				return err
			}
		}
		return nil
	}

	var fallback <-chan time.Time
	if cfg.keyframeWait > 0 {
		t := time.NewTimer(cfg.keyframeWait)
		defer t.Stop()
		fallback = t.C
	} else if err := send(h.startFromCache(s)); err != nil {
		return err
	}
	var spare []*accessUnit
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-fallback:
			fallback = nil
			// No live keyframe in time (the producer ignores or
			// rate-limits requests): start from the cached GOP. The sink
			// then lags live by the cache's age.
			if err := send(h.startFromCache(s)); err != nil {
				return err
			}
		}
		for {
			batch := h.take(s, spare)
			if batch == nil {
				break
			}
			if err := send(batch); err != nil {
				return err
			}
			clear(batch) // let the access units go
			spare = batch
		}
	}
}

// rtpTime converts ns to the 90 kHz RTP clock of video (RFC 6184 §8.2.1),
// rounded to the nearest tick (1/30 s is 3000 ticks, not 2999), without
// overflowing for any timeline length.
func rtpTime(ns int64) int64 {
	const sec = int64(time.Second)
	frac := ns % sec * 90000
	if frac >= 0 {
		frac += sec / 2
	} else {
		frac -= sec / 2
	}
	return ns/sec*90000 + frac/sec
}
