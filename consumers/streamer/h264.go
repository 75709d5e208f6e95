package streamer

import (
	"errors"
	"fmt"
	"time"
)

// H.264 NAL unit types the streamer looks at (ITU-T H.264 table 7-1).
const (
	naluIDR = 5
	naluSPS = 7
	naluPPS = 8
	naluAUD = 9
)

// accessUnit is one H.264 access unit copied out of the producer's mapping.
// It is immutable once published: every sink (viewer, publisher) reads the
// same one, so no sink may modify it.
type accessUnit struct {
	nalus [][]byte   // NAL units without start codes, sub-slices of one buffer
	size  int        // bytes of the NAL units
	key   bool       // starts a GOP: decodable without earlier units
	times frameTimes // as the producer gave them
	pts   int64      // ns on the streamer's own continuous timeline (see timeline)
	ntp   time.Time  // capture time (CLOCK_REALTIME), for RTCP sender reports
	gen   uint64     // generation of the parameter sets it was coded with (hub.params)
	recv  time.Time
}

// splitAnnexB returns the NAL units of a byte-stream (Annex B) access unit
// without their start codes, appended to dst. Access unit delimiters are
// left out: RTP marks access-unit boundaries itself (RFC 6184 §5.1), and the
// delimiter only costs a packet per frame.
func splitAnnexB(dst [][]byte, au []byte) ([][]byte, error) {
	start := -1 // first byte of the current NAL unit
	i := 0
	for i+2 < len(au) {
		if au[i] != 0 || au[i+1] != 0 || au[i+2] != 1 {
			i++
			continue
		}
		if start >= 0 {
			dst = appendNALU(dst, au[start:i])
		} else if i > 0 && !allZero(au[:i]) {
			return dst, fmt.Errorf("access unit of %d bytes does not start with a start code (first bytes % x)", len(au), au[:min(len(au), 4)])
		}
		i += 3
		start = i
	}
	if start < 0 {
		return dst, fmt.Errorf("access unit of %d bytes has no start code", len(au))
	}
	return appendNALU(dst, au[start:]), nil
}

// appendNALU appends n without the trailing zero bytes that belong to the
// next start code (zero_byte, trailing_zero_8bits); a NAL unit never ends in
// a zero byte (rbsp_trailing_bits).
func appendNALU(dst [][]byte, n []byte) [][]byte {
	for len(n) > 0 && n[len(n)-1] == 0 {
		n = n[:len(n)-1]
	}
	if len(n) == 0 || n[0]&0x1f == naluAUD {
		return dst
	}
	return append(dst, n)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// parameterSets returns the first SPS and PPS among nalus (nil when absent).
func parameterSets(nalus [][]byte) (sps, pps []byte) {
	for _, n := range nalus {
		switch n[0] & 0x1f {
		case naluSPS:
			if sps == nil {
				sps = n
			}
		case naluPPS:
			if pps == nil {
				pps = n
			}
		}
	}
	return sps, pps
}

// hasIDR reports whether nalus contain a slice of an IDR picture.
func hasIDR(nalus [][]byte) bool {
	for _, n := range nalus {
		if n[0]&0x1f == naluIDR {
			return true
		}
	}
	return false
}

// errEmptyAU is returned for an access unit with no NAL unit to send.
var errEmptyAU = errors.New("access unit holds no NAL unit")

// newAccessUnit splits a copied byte-stream access unit. buf must not be
// modified afterwards: the NAL units are slices of it.
func newAccessUnit(buf []byte, keyFlag bool) (*accessUnit, error) {
	nalus, err := splitAnnexB(nil, buf)
	if err != nil {
		return nil, err
	}
	if len(nalus) == 0 {
		return nil, errEmptyAU
	}
	size := 0
	for _, n := range nalus {
		size += len(n)
	}
	// The producer's flag comes from the encoder (a non-delta buffer);
	// an IDR slice is what a decoder needs to start, so either will do.
	return &accessUnit{nalus: nalus, size: size, key: keyFlag || hasIDR(nalus)}, nil
}
