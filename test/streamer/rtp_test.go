package streamer_test

import (
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

// rtpViewer plays the stream over TCP with gortsplib and checks the RTP
// packets themselves: sequence numbers without gaps, and timestamps that
// only go forward.
type rtpViewer struct {
	t    *testing.T
	more chan struct{} // capacity 1: a new access unit began

	mu        sync.Mutex
	have      bool
	lastSeq   uint16
	lastTS    uint32
	aus       int       // access units (distinct timestamps)
	seqGaps   int       // packets missing
	backwards int       // timestamps that went back
	maxStep   uint32    // largest timestamp step, 90 kHz ticks
	maxStepAt time.Time // when the access unit after it arrived
}

func playRTP(t *testing.T, url string) *rtpViewer {
	t.Helper()
	v := &rtpViewer{t: t, more: make(chan struct{}, 1)}
	u, err := base.ParseURL(url)
	require.NoError(t, err)
	tr := gortsplib.TransportTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tr, ReadTimeout: waitTimeout,
		OnPacketsLost: func(uint64) {}, OnDecodeError: func(error) {}}
	require.NoError(t, c.Start2())
	t.Cleanup(c.Close)
	desc, _, err := c.Describe(u)
	require.NoError(t, err)
	require.NoError(t, c.SetupAll(desc.BaseURL, desc.Medias))
	c.OnPacketRTPAny(func(_ *description.Media, _ format.Format, pkt *rtp.Packet) {
		v.mu.Lock()
		defer v.mu.Unlock()
		if !v.have {
			v.have, v.lastSeq, v.lastTS, v.aus = true, pkt.SequenceNumber, pkt.Timestamp, 1
			return
		}
		if pkt.SequenceNumber != v.lastSeq+1 {
			v.seqGaps += int(pkt.SequenceNumber - v.lastSeq - 1)
		}
		v.lastSeq = pkt.SequenceNumber
		if d := pkt.Timestamp - v.lastTS; d != 0 {
			if int32(d) < 0 {
				v.backwards++
			} else {
				v.aus++
				if d > v.maxStep {
					v.maxStep, v.maxStepAt = d, time.Now()
				}
			}
			v.lastTS = pkt.Timestamp
			select {
			case v.more <- struct{}{}:
			default:
			}
		}
	})
	_, err = c.Play(nil)
	require.NoError(t, err)
	return v
}

// stats returns access units seen, packets missing, backward steps and the
// largest timestamp step.
func (v *rtpViewer) stats() (aus, seqGaps, backwards int, maxStep time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.aus, v.seqGaps, v.backwards, time.Duration(v.maxStep) * time.Second / 90000
}

// largestStepAt returns when the access unit after the largest timestamp
// step arrived.
func (v *rtpViewer) largestStepAt() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.maxStepAt
}

// waitAUs waits until n access units were seen in all.
func (v *rtpViewer) waitAUs(n int) {
	v.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		if aus, _, _, _ := v.stats(); aus >= n {
			return
		}
		select {
		case <-v.more:
		case <-deadline.C:
			aus, _, _, _ := v.stats()
			v.t.Fatalf("RTP viewer saw %d access units within %v, want %d", aus, waitTimeout, n)
		}
	}
}
