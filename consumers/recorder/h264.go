package recorder

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// NAL unit types the recorder looks at (ITU-T H.264 Table 7-1).
const (
	nalSPS = 7
	nalPPS = 8
	nalAUD = 9
)

// au is one access unit as the recorder keeps it: a copy, converted from
// the producer's Annex-B byte stream to the AVCC sample MP4 wants, so no
// lease is held while it waits in the pre-event buffer or the write queue.
type au struct {
	sample   []byte // AVCC: 4-byte big-endian lengths, no SPS/PPS/AUD
	sps, pps []byte // the in-band parameter sets (keyframes), or nil
	seq      uint64
	pts, dts int64 // producer timestamps, ns (dts = pts when unknown)
	dur      int64 // ns, 0 when unknown
	mono     int64 // CLOCK_MONOTONIC capture time
	real     int64 // CLOCK_REALTIME capture time
	key      bool
	arrived  int64 // CLOCK_MONOTONIC time of receipt (health)
}

// size is what the access unit costs in memory, for the queue's bound.
func (a *au) size() int { return len(a.sample) + len(a.sps) + len(a.pps) + 128 }

// toAVCC copies a byte-stream access unit into AVCC form in one pass: each
// NAL unit gets a 4-byte length instead of its start code; SPS and PPS are
// returned apart (they go into the avcC of the segment's sample entry) and
// access unit delimiters are dropped.
func toAVCC(annexB []byte) (sample, sps, pps []byte, err error) {
	sample = make([]byte, 0, len(annexB)+16)
	rest := annexB
	start := bytes.Index(rest, []byte{0, 0, 1})
	if start < 0 {
		return nil, nil, nil, fmt.Errorf("recorder: access unit of %d bytes has no start code", len(annexB))
	}
	rest = rest[start+3:]
	for len(rest) > 0 {
		end := bytes.Index(rest, []byte{0, 0, 1})
		nal, next := rest, []byte(nil)
		if end >= 0 {
			nal, next = rest[:end], rest[end+3:]
		}
		// A 4-byte start code (and trailing_zero_8bits) leave zeros at the
		// end of the previous unit; a NAL unit never ends with 0x00.
		nal = bytes.TrimRight(nal, "\x00")
		rest = next
		if len(nal) == 0 {
			continue
		}
		switch nal[0] & 0x1f {
		case nalSPS:
			sps = append([]byte(nil), nal...)
		case nalPPS:
			pps = append([]byte(nil), nal...)
		case nalAUD:
		default:
			sample = binary.BigEndian.AppendUint32(sample, uint32(len(nal)))
			sample = append(sample, nal...)
		}
	}
	if len(sample) == 0 {
		return nil, nil, nil, fmt.Errorf("recorder: access unit of %d bytes has no slice", len(annexB))
	}
	return sample, sps, pps, nil
}

// spsParams is what the recorder needs from an SPS.
type spsParams struct {
	width, height  int
	highProfile    bool // profile_idc 100, 110, 122 or 144: avcC carries the chroma format and bit depths
	chromaFormat   int
	bitDepthLuma   int
	bitDepthChroma int
}

// spsInfo parses an SPS NAL unit (header included); on error the sizes are 0.
func spsInfo(sps []byte) spsParams {
	var s h264.SPS
	if err := s.Unmarshal(sps); err != nil {
		return spsParams{}
	}
	p := spsParams{width: s.Width(), height: s.Height(), chromaFormat: 1, bitDepthLuma: 8, bitDepthChroma: 8}
	switch s.ProfileIdc {
	case 100, 110, 122, 144:
		p.highProfile = true
		p.chromaFormat = int(s.ChromaFormatIdc)
		p.bitDepthLuma = int(s.BitDepthLumaMinus8) + 8
		p.bitDepthChroma = int(s.BitDepthChromaMinus8) + 8
	}
	return p
}
