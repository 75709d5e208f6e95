package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// WebRTC live view through WHEP (draft-ietf-wish-whep, MediaMTX's
// /<camera>/whep): the browser POSTs its SDP offer, the answer comes back
// with every ICE candidate in it (no trickle), and the access units of the
// camera's H.264 stream go out as they are (no re-encode), each viewer from
// its own bounded queue starting at a keyframe.

// Limits of the WHEP endpoint.
const (
	maxOffer        = 64 << 10         // bytes of an SDP offer
	maxSessions     = 64               // WebRTC viewers of the whole daemon
	gatherTimeout   = 5 * time.Second  // ICE gathering of the answer (host candidates only: milliseconds)
	connectDeadline = 30 * time.Second // a session that never connects ends
)

// newWebRTCAPI returns the pion API every session shares: H.264 only
// (packetization-mode 1, the profiles browsers offer), the default
// interceptors (NACK responses, RTCP reports), and host candidates on every
// interface including loopback: a browser on the same machine reaches the
// daemon through 127.0.0.1, which pion leaves out by default.
func newWebRTCAPI() (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}, {Type: "goog-remb"}}
	for i, profile := range []string{"42e01f", "42001f", "4d001f", "640032"} {
		err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profile, RTCPFeedback: fb},
			PayloadType: webrtc.PayloadType(102 + i),
		}, webrtc.RTPCodecTypeVideo)
		if err != nil {
			return nil, fmt.Errorf("web: register H.264 %s: %w", profile, err)
		}
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, fmt.Errorf("web: webrtc interceptors: %w", err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// whepSession is one WebRTC viewer.
type whepSession struct {
	id     string
	cam    *camera
	pc     *webrtc.PeerConnection
	v      *viewer
	cancel context.CancelFunc
	once   sync.Once
}

// sessions are the WHEP sessions of a server.
type sessions struct {
	api *webrtc.API

	mu     sync.Mutex
	byID   map[string]*whepSession
	closed bool
	wg     sync.WaitGroup // the sessions' goroutines
}

// handleWHEP answers POST /<camera>/whep.
func (s *Server) handleWHEP(c *camera) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/sdp" {
			writeError(w, httpError{http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: a WHEP offer is application/sdp",
				r.Header.Get("Content-Type"))})
			return
		}
		offer, err := io.ReadAll(io.LimitReader(r.Body, maxOffer+1))
		if err != nil {
			writeError(w, httpError{http.StatusBadRequest, fmt.Sprintf("read the offer: %v", err)})
			return
		}
		if len(offer) > maxOffer {
			writeError(w, httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("the offer exceeds %d bytes", maxOffer)})
			return
		}
		sess, answer, err := s.webrtc.start(s, c, string(offer))
		if err != nil {
			writeError(w, err)
			return
		}
		loc := "/" + c.cfg.Name + "/whep/" + sess.id
		w.Header().Set("Content-Type", "application/sdp")
		w.Header().Set("Location", loc)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, answer)
	}
}

// handleWHEPDelete answers DELETE /<camera>/whep/<session>.
func (s *Server) handleWHEPDelete(c *camera) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		s.webrtc.mu.Lock()
		sess, ok := s.webrtc.byID[id]
		s.webrtc.mu.Unlock()
		if !ok || sess.cam != c {
			writeError(w, httpError{http.StatusNotFound, fmt.Sprintf("camera %q has no WHEP session %q", c.cfg.Name, id)})
			return
		}
		sess.close(s.webrtc, "deleted")
		w.WriteHeader(http.StatusOK)
	}
}

// handleWHEPPatch answers PATCH (trickle ICE), which this server does not
// take: its answer carries every candidate, and the client's offer should
// too.
func handleWHEPPatch(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Allow", "DELETE")
	writeError(w, httpError{http.StatusMethodNotAllowed, "trickle ICE is not supported: send the offer once ICE gathering is complete"})
}

// start makes a session for an SDP offer and returns it with the answer.
func (ss *sessions) start(s *Server, c *camera, offer string) (*whepSession, string, error) {
	ss.mu.Lock()
	n, closed := len(ss.byID), ss.closed
	ss.mu.Unlock()
	switch {
	case closed:
		return nil, "", httpError{http.StatusServiceUnavailable, "the server is stopping"}
	case n >= maxSessions:
		return nil, "", httpError{http.StatusServiceUnavailable, fmt.Sprintf("%d WebRTC viewers already: the limit", maxSessions)}
	}
	pc, err := ss.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", fmt.Errorf("web: new peer connection: %w", err)
	}
	fail := func(code int, format string, a ...any) (*whepSession, string, error) {
		_ = pc.Close()
		return nil, "", httpError{code, fmt.Sprintf(format, a...)}
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000},
		"video", "framehub-"+c.cfg.Name)
	if err != nil {
		return fail(http.StatusInternalServerError, "web: new track: %v", err)
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		return fail(http.StatusInternalServerError, "web: add track: %v", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(http.StatusBadRequest, "bad SDP offer: %v", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(http.StatusBadRequest, "no answer to this offer (does it receive H.264 video?): %v", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(http.StatusInternalServerError, "web: set local description: %v", err)
	}
	select {
	case <-gathered:
	case <-time.After(gatherTimeout):
		return fail(http.StatusInternalServerError, "web: ICE gathering took more than %v", gatherTimeout)
	}

	ctx, cancel := context.WithCancel(context.Background())
	sess := &whepSession{id: newSessionID(), cam: c, pc: pc, cancel: cancel, v: c.addViewer("webrtc", s.o.ViewerQueue)}
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		cancel()
		c.removeViewer(sess.v)
		return fail(http.StatusServiceUnavailable, "the server is stopping")
	}
	ss.byID[sess.id] = sess
	ss.wg.Add(2)
	ss.mu.Unlock()
	connected := make(chan struct{})
	var connOnce sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		c.log.Debug("WHEP session", "session", sess.id, "state", st.String())
		switch st {
		case webrtc.PeerConnectionStateConnected:
			connOnce.Do(func() { close(connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			cancel() // feed returns and closes the session
		}
	})
	go func() {
		defer ss.wg.Done()
		sess.feed(ctx, track, connected)
		sess.close(ss, "ended")
	}()
	go func() {
		defer ss.wg.Done()
		sess.readRTCP(sender)
	}()
	c.log.Info("WebRTC viewer joined", "session", sess.id)
	return sess, pc.LocalDescription().SDP, nil
}

// feed writes the viewer's access units to the track until ctx ends; a
// session that does not connect within connectDeadline ends.
func (sess *whepSession) feed(ctx context.Context, track *webrtc.TrackLocalStaticRTP, connected <-chan struct{}) {
	t := time.NewTimer(connectDeadline)
	defer t.Stop()
	select {
	case <-connected:
	case <-ctx.Done():
		return
	case <-t.C:
		sess.cam.log.Info("WebRTC viewer never connected", "session", sess.id, "waited", connectDeadline)
		return
	}
	var pk rtpPacketizer
	for {
		select {
		case <-ctx.Done():
			return
		case au := <-sess.v.C():
			for _, p := range pk.packets(au) {
				if err := track.WriteRTP(p); err != nil {
					if !errors.Is(err, io.ErrClosedPipe) {
						sess.cam.log.Debug("WebRTC write", "session", sess.id, "err", err)
					}
					return
				}
			}
		}
	}
}

// rtpPacketizer makes the RTP packets of access units (RFC 6184: single
// NAL units, STAP-A for SPS and PPS, FU-A beyond the MTU). Their RTP
// timestamp is the frame's capture time (CLOCK_REALTIME at 90 kHz, modulo
// 2^32) rather than a count from a random start: players pace frames as
// they were captured, and a page can tell how old the picture it shows is
// (requestVideoFrameCallback's rtpTimestamp; docs/WEB.md, latency).
type rtpPacketizer struct {
	payloader codecs.H264Payloader
	seq       uint16
}

// rtpMTU leaves room for SRTP and the IP/UDP headers in a 1500-byte path.
const rtpMTU = 1200

func (pk *rtpPacketizer) packets(au *accessUnit) []*rtp.Packet {
	payloads := pk.payloader.Payload(rtpMTU-12, au.annexB)
	ts := uint32(uint64(au.real.UnixNano()) * 9 / 100000) // 90 kHz
	out := make([]*rtp.Packet, len(payloads))
	for i, pl := range payloads {
		pk.seq++
		out[i] = &rtp.Packet{Header: rtp.Header{Version: 2, Marker: i == len(payloads)-1, SequenceNumber: pk.seq, Timestamp: ts},
			Payload: pl}
	}
	return out
}

// readRTCP reads the viewer's RTCP (which runs the interceptors) until
// the connection closes; a picture loss indication asks the producer for a
// keyframe.
func (sess *whepSession) readRTCP(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				sess.cam.keys.Request()
			}
		}
	}
}

// close ends the session once: it stops feeding it and closes the peer
// connection (which ends readRTCP).
func (sess *whepSession) close(ss *sessions, why string) {
	sess.once.Do(func() {
		sess.cancel()
		sess.cam.removeViewer(sess.v)
		ss.mu.Lock()
		delete(ss.byID, sess.id)
		ss.mu.Unlock()
		_ = sess.pc.Close()
		sess.cam.log.Info("WebRTC viewer left", "session", sess.id, "why", why, "dropped", sess.v.dropped.Load())
	})
}

// closeAll ends every session and waits for their goroutines; no session
// starts afterwards.
func (ss *sessions) closeAll() {
	ss.mu.Lock()
	ss.closed = true
	all := make([]*whepSession, 0, len(ss.byID))
	for _, sess := range ss.byID {
		all = append(all, sess)
	}
	ss.mu.Unlock()
	for _, sess := range all {
		sess.close(ss, "server stopping")
	}
	ss.wg.Wait()
}

// count returns the number of sessions.
func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.byID)
}

// newSessionID returns 128 random bits in hex: a session's URL cannot be
// guessed.
func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}
