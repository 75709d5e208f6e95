package media

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/framehub/framehub/ipc"
)

// H.264 NAL unit types the access unit builder looks at.
const (
	naluNonIDR = 1
	naluIDR    = 5
	naluSPS    = 7
	naluPPS    = 8
	naluAUD    = 9
)

// audNALU is the access unit delimiter put before an access unit that has
// none: primary_pic_type 7 (any slice type may follow), then the RBSP stop
// bit. What an AUD says about the slices is a hint decoders do not need.
var audNALU = []byte{naluAUD, 0xf0}

// startCode precedes every NAL unit of the h264 stream.
var startCode = []byte{0, 0, 0, 1}

// errNoParams is what build returns for an IDR access unit while no SPS or
// PPS is known: nothing could decode it.
var errNoParams = errors.New("IDR access unit before any SPS and PPS (neither in-band nor in the SDP)")

// auBuilder turns the NAL units of one camera access unit (as the RTP
// depayloader gives them, without start codes) into an access unit of the
// h264 stream, in the format PROTOCOL.md §7 ("Encoded streams") promises:
// Annex B with four-byte start codes, an access unit delimiter first, and
// the SPS and PPS before every IDR slice. What the camera sent is kept
// byte for byte and in its order; the builder only adds the delimiter when
// the camera sent none and the parameter sets when an IDR access unit
// lacks them (many cameras send them only in the SDP, or only at the start
// of a session). It remembers the last SPS and PPS seen, in-band or from
// the SDP. It is used by one goroutine at a time.
type auBuilder struct {
	sps, pps []byte   // the camera's current parameter sets (copies)
	spsNew   bool     // sps changed since the caller last looked (takeNewSPS)
	buf      []byte   // the last access unit built; reused
	nalus    [][]byte // its NAL units, in buf; reused
}

// setParams records parameter sets the camera announced out of band (the
// SDP's sprop-parameter-sets); nil leaves one unchanged.
func (b *auBuilder) setParams(sps, pps []byte) {
	if len(sps) > 0 {
		b.noteSPS(sps)
	}
	if len(pps) > 0 && !bytes.Equal(pps, b.pps) {
		b.pps = append(b.pps[:0:0], pps...)
	}
}

func (b *auBuilder) noteSPS(sps []byte) {
	if !bytes.Equal(sps, b.sps) {
		b.sps = append(b.sps[:0:0], sps...)
		b.spsNew = true
	}
}

// takeNewSPS returns the SPS when it changed since the last call, else nil.
func (b *auBuilder) takeNewSPS() []byte {
	if !b.spsNew {
		return nil
	}
	b.spsNew = false
	return b.sps
}

// build returns the h264 stream's bytes of the access unit made of nalus
// and its Frame flags (KEYFRAME for an IDR, HEADER when it carries the
// SPS). The bytes, and the NAL units of the result (built), are valid
// until the next build. It fails for an access
// unit with no NAL unit, an empty NAL unit, or an IDR while no parameter
// set is known (errNoParams).
func (b *auBuilder) build(nalus [][]byte) ([]byte, uint32, error) {
	if len(nalus) == 0 {
		return nil, 0, errors.New("empty access unit")
	}
	var idr, hasSPS, hasPPS bool
	for i, n := range nalus {
		if len(n) == 0 {
			return nil, 0, fmt.Errorf("empty NAL unit %d of %d", i, len(nalus))
		}
		switch n[0] & 0x1f {
		case naluIDR:
			idr = true
		case naluSPS:
			hasSPS = true
			b.noteSPS(n)
		case naluPPS:
			hasPPS = true
			if !bytes.Equal(n, b.pps) {
				b.pps = append(b.pps[:0:0], n...)
			}
		}
	}
	needSPS, needPPS := idr && !hasSPS, idr && !hasPPS
	if (needSPS && b.sps == nil) || (needPPS && b.pps == nil) {
		return nil, 0, errNoParams
	}
	out := b.buf[:0]
	var starts [64]int // where each NAL unit starts in out (most access units have a handful)
	offs := starts[:0]
	put := func(n []byte) {
		out = append(out, startCode...)
		offs = append(offs, len(out))
		out = append(out, n...)
	}
	if nalus[0][0]&0x1f != naluAUD {
		put(audNALU)
	}
	for _, n := range nalus {
		// The parameter sets go after the delimiter and the camera's own
		// SPS/PPS, before anything else (SEI, slices): H.264 7.4.1.2.3.
		if t := n[0] & 0x1f; (needSPS || needPPS) && t != naluAUD && t != naluSPS && t != naluPPS {
			if needSPS {
				put(b.sps)
			}
			if needPPS {
				put(b.pps)
			}
			needSPS, needPPS = false, false
		}
		put(n)
	}
	b.buf = out
	b.nalus = b.nalus[:0]
	for i, o := range offs {
		end := len(out)
		if i+1 < len(offs) {
			end = offs[i+1] - len(startCode)
		}
		b.nalus = append(b.nalus, out[o:end:end])
	}
	var flags uint32
	if idr {
		flags |= ipc.FlagKeyframe | ipc.FlagHeader
	} else if hasSPS {
		flags |= ipc.FlagHeader
	}
	return out, flags, nil
}

// built returns the NAL units of the access unit build returned last.
func (b *auBuilder) built() [][]byte { return b.nalus }

// spsCaps reads the size, frame rate and RFC 6381 codec of an SPS NAL unit
// (its header byte included). The rate is 0/1 (unknown) when the SPS has
// no timing information.
func spsCaps(sps []byte) (w, h int, fpsN, fpsD uint32, codec string, err error) {
	var s h264.SPS
	if err := s.Unmarshal(sps); err != nil {
		return 0, 0, 0, 0, "", fmt.Errorf("parse SPS: %w", err)
	}
	w, h = s.Width(), s.Height()
	fpsD = 1
	if t := s.VUI; t != nil && t.TimingInfo != nil && t.TimingInfo.NumUnitsInTick > 0 && t.TimingInfo.TimeScale > 0 {
		// A frame is two ticks (H.264 E.2.1, frame_mbs: field pairs).
		n, d := t.TimingInfo.TimeScale, 2*t.TimingInfo.NumUnitsInTick
		g := gcd(n, d)
		fpsN, fpsD = n/g, d/g
	}
	return w, h, fpsN, fpsD, codecString(sps[1:]), nil
}

func gcd(a, b uint32) uint32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
