package recorder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Segment is a segment file as ReadSegment finds it.
type Segment struct {
	Info      SegmentInfo
	HasInfo   bool // the segment info box was found (files of other muxers have none)
	Width     int
	Height    int
	SPS, PPS  []byte // from the avcC
	Duration  uint64 // mvhd duration, ticks of Timescale; 0 until finalised
	Timescale uint32
	Fragments []Fragment
	// ValidEnd is where the last complete fragment ends (or the init
	// boxes, when there is no fragment): bytes beyond it are a torn write.
	ValidEnd int64
	Size     int64 // the file's size

	durations durationFields // offsets of the duration fields
	nextSeq   uint32         // mfhd sequence number after the last fragment
}

// Fragment is one complete fragment of a segment.
type Fragment struct {
	Offset, End int64 // the fragment's bytes, its info box included
	Seq         uint32
	BaseTime    uint64 // tfdt, ticks
	Info        FragmentInfo
	HasInfo     bool
	Samples     []Sample
}

// Sample is one sample of a fragment.
type Sample struct {
	DTS      uint64 // ticks from the segment's origin
	Duration uint32
	CTO      int32 // PTS − DTS, ticks
	Size     uint32
	Sync     bool
	Offset   int64 // file offset of the sample's data (AVCC)
}

// End is the media time (ticks) after the segment's last sample.
func (s *Segment) End() uint64 {
	if len(s.Fragments) == 0 {
		return 0
	}
	f := &s.Fragments[len(s.Fragments)-1]
	last := f.Samples[len(f.Samples)-1]
	return last.DTS + uint64(last.Duration)
}

// Samples returns every sample of the segment, in decode order.
func (s *Segment) Samples() []Sample {
	var out []Sample
	for _, f := range s.Fragments {
		out = append(out, f.Samples...)
	}
	return out
}

var errTorn = errors.New("torn box")

// box is a box header read from a file.
type box struct {
	typ        string
	start, end int64 // the whole box
	body       int64 // offset of the payload
}

func readBox(r io.ReaderAt, off, limit int64) (box, error) {
	var h [16]byte
	if limit-off < 8 {
		return box{}, errTorn
	}
	if _, err := r.ReadAt(h[:8], off); err != nil {
		return box{}, fmt.Errorf("read box header at %d: %w", off, err)
	}
	b := box{typ: string(h[4:8]), start: off, body: off + 8}
	size := int64(binary.BigEndian.Uint32(h[:4]))
	switch size {
	case 0: // to the end of the file
		size = limit - off
	case 1:
		if limit-off < 16 {
			return box{}, errTorn
		}
		if _, err := r.ReadAt(h[8:16], off+8); err != nil {
			return box{}, fmt.Errorf("read box size at %d: %w", off, err)
		}
		size = int64(binary.BigEndian.Uint64(h[8:16]))
		b.body += 8
	}
	if size < b.body-off || off+size > limit {
		return box{}, errTorn
	}
	b.end = off + size
	return b, nil
}

// ReadSegment reads a fragmented MP4 segment written by the recorder (or
// any fMP4 with one video track): its init boxes, every complete fragment
// with its samples, and where the valid data ends. A file whose init boxes
// are incomplete is an error; a torn last fragment is not (it ends the
// list, and ValidEnd says where to truncate).
func ReadSegment(r io.ReaderAt, size int64) (*Segment, error) {
	s := &Segment{Size: size}
	var (
		off      int64
		haveMoov bool
		pending  *FragmentInfo // fragment info box waiting for its moof
		fragOff  int64
		moofBody []byte
		moofBox  box
	)
	for off < size {
		b, err := readBox(r, off, size)
		if errors.Is(err, errTorn) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch b.typ {
		case "moov":
			body, err := readBody(r, b)
			if err != nil {
				return nil, err
			}
			if err := s.parseMoov(body, b.body); err != nil {
				return nil, fmt.Errorf("moov: %w", err)
			}
			haveMoov = true
			s.ValidEnd = b.end
		case "uuid":
			body, err := readBody(r, b)
			if err != nil {
				return nil, err
			}
			switch {
			case len(body) >= 16+segmentInfoSize && bytes.Equal(body[:16], uuidSegment[:]) && body[16] == 1:
				s.Info, s.HasInfo = parseSegmentInfo(body[17:]), true
				if moofBody == nil && len(s.Fragments) == 0 {
					s.ValidEnd = b.end
				}
			case len(body) >= 16+fragmentInfoSize && bytes.Equal(body[:16], uuidFragment[:]) && body[16] == 1:
				fi := parseFragmentInfo(body[17:])
				pending, fragOff = &fi, b.start
			}
		case "moof":
			if moofBody, err = readBody(r, b); err != nil {
				return nil, err
			}
			moofBox = b
			if pending == nil {
				fragOff = b.start
			}
		case "mdat":
			if moofBody == nil {
				break // not a fragment's: ignore
			}
			f, err := parseMoof(moofBody, moofBox, b)
			if err != nil {
				return nil, fmt.Errorf("fragment at %d: %w", moofBox.start, err)
			}
			f.Offset, f.End = fragOff, b.end
			if pending != nil {
				f.Info, f.HasInfo = *pending, true
			}
			s.Fragments = append(s.Fragments, f)
			s.ValidEnd = b.end
			s.nextSeq = f.Seq + 1
			moofBody, pending = nil, nil
		}
		off = b.end
	}
	if !haveMoov {
		return nil, fmt.Errorf("no complete moov box in %d bytes", size)
	}
	return s, nil
}

func readBody(r io.ReaderAt, b box) ([]byte, error) {
	if b.end-b.body > 64<<20 {
		return nil, fmt.Errorf("%s box of %d bytes is too large", b.typ, b.end-b.start)
	}
	body := make([]byte, b.end-b.body)
	if _, err := r.ReadAt(body, b.body); err != nil {
		return nil, fmt.Errorf("read %s box at %d: %w", b.typ, b.start, err)
	}
	return body, nil
}

// children calls fn for every box in body (at file offset base).
func children(body []byte, base int64, fn func(typ string, payload []byte, payloadOff int64) error) error {
	for len(body) > 0 {
		if len(body) < 8 {
			return errors.New("truncated child box")
		}
		n := int(binary.BigEndian.Uint32(body))
		if n < 8 || n > len(body) {
			return fmt.Errorf("child box %q of size %d in %d bytes", body[4:8], n, len(body))
		}
		if err := fn(string(body[4:8]), body[8:n], base+8); err != nil {
			return err
		}
		body, base = body[n:], base+int64(n)
	}
	return nil
}

// parseMoov finds the timescale, the size of the video and the offsets of
// the duration fields (versions 1 only: what marshalInit writes).
func (s *Segment) parseMoov(body []byte, base int64) error {
	var walk func(body []byte, base int64) error
	walk = func(body []byte, base int64) error {
		return children(body, base, func(typ string, p []byte, po int64) error {
			switch typ {
			case "trak", "mdia", "minf", "stbl", "mvex":
				return walk(p, po)
			case "stsd":
				if len(p) > 8 {
					return walk(p[8:], po+8)
				}
			case "avc1":
				if len(p) >= 78 {
					s.Width, s.Height = int(binary.BigEndian.Uint16(p[24:])), int(binary.BigEndian.Uint16(p[26:]))
					return walk(p[78:], po+78)
				}
			case "avcC":
				s.SPS, s.PPS = parseAvcC(p)
			case "mvhd":
				if len(p) >= 28 && p[0] == 1 {
					s.Timescale = binary.BigEndian.Uint32(p[20:])
					s.Duration = binary.BigEndian.Uint64(p[24:])
					s.durations[0] = po + 24
				}
			case "tkhd":
				if len(p) >= 36 && p[0] == 1 {
					s.durations[1] = po + 28
				}
			case "mdhd":
				if len(p) >= 32 && p[0] == 1 {
					s.durations[2] = po + 24
				}
			case "mehd":
				if len(p) >= 12 && p[0] == 1 {
					s.durations[3] = po + 4
				}
			}
			return nil
		})
	}
	return walk(body, base)
}

func parseSegmentInfo(p []byte) SegmentInfo {
	var si SegmentInfo
	copy(si.BootID[:], p[:16])
	p = p[16:]
	si.BaseNS = int64(binary.BigEndian.Uint64(p))
	si.StartMono = int64(binary.BigEndian.Uint64(p[8:]))
	si.StartReal = int64(binary.BigEndian.Uint64(p[16:]))
	si.FirstSeq = binary.BigEndian.Uint64(p[24:])
	return si
}

func parseFragmentInfo(p []byte) FragmentInfo {
	return FragmentInfo{
		FirstSeq:  binary.BigEndian.Uint64(p),
		Count:     binary.BigEndian.Uint32(p[8:]),
		FirstMono: int64(binary.BigEndian.Uint64(p[12:])),
		LastMono:  int64(binary.BigEndian.Uint64(p[20:])),
		FirstReal: int64(binary.BigEndian.Uint64(p[28:])),
		LastDTS:   int64(binary.BigEndian.Uint64(p[36:])),
	}
}

// parseMoof reads a fragment's samples and checks that they lie in mdat.
func parseMoof(body []byte, moof, mdat box) (Fragment, error) {
	var (
		f         Fragment
		gotTrun   bool
		defDur    uint32
		defSize   uint32
		defFlags  uint32
		dataStart int64
	)
	err := children(body, moof.body, func(typ string, p []byte, _ int64) error {
		switch typ {
		case "mfhd":
			if len(p) < 8 {
				return errors.New("short mfhd")
			}
			f.Seq = binary.BigEndian.Uint32(p[4:])
		case "traf":
			return children(p, 0, func(typ string, p []byte, _ int64) error {
				switch typ {
				case "tfhd":
					return parseTfhd(p, &defDur, &defSize, &defFlags)
				case "tfdt":
					if len(p) >= 12 && p[0] == 1 {
						f.BaseTime = binary.BigEndian.Uint64(p[4:])
					} else if len(p) >= 8 {
						f.BaseTime = uint64(binary.BigEndian.Uint32(p[4:]))
					}
				case "trun":
					if gotTrun {
						return errors.New("more than one trun")
					}
					gotTrun = true
					var err error
					dataStart, err = parseTrun(p, &f, moof.start, defDur, defSize, defFlags)
					return err
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return f, err
	}
	if !gotTrun || len(f.Samples) == 0 {
		return f, errors.New("no samples")
	}
	var total int64
	for _, s := range f.Samples {
		total += int64(s.Size)
	}
	if dataStart < mdat.body || dataStart+total > mdat.end {
		return f, fmt.Errorf("samples at %d+%d outside mdat %d..%d", dataStart, total, mdat.body, mdat.end)
	}
	t, off := f.BaseTime, dataStart
	for i := range f.Samples {
		f.Samples[i].DTS = t
		f.Samples[i].Offset = off
		t += uint64(f.Samples[i].Duration)
		off += int64(f.Samples[i].Size)
	}
	return f, nil
}

func parseTfhd(p []byte, dur, size, flags *uint32) error {
	if len(p) < 8 {
		return errors.New("short tfhd")
	}
	fl := binary.BigEndian.Uint32(p) & 0xffffff
	p = p[8:]
	for _, fld := range []struct {
		bit uint32
		n   int
		dst *uint32
	}{{0x1, 8, nil}, {0x2, 4, nil}, {0x8, 4, dur}, {0x10, 4, size}, {0x20, 4, flags}} {
		if fl&fld.bit == 0 {
			continue
		}
		if len(p) < fld.n {
			return errors.New("short tfhd")
		}
		if fld.dst != nil {
			*fld.dst = binary.BigEndian.Uint32(p)
		}
		p = p[fld.n:]
	}
	return nil
}

// parseTrun appends the trun's samples to f and returns the file offset of
// the first sample's data.
func parseTrun(p []byte, f *Fragment, moofStart int64, defDur, defSize, defFlags uint32) (int64, error) {
	if len(p) < 8 {
		return 0, errors.New("short trun")
	}
	fl := binary.BigEndian.Uint32(p) & 0xffffff
	n := int(binary.BigEndian.Uint32(p[4:]))
	p = p[8:]
	dataStart := moofStart
	if fl&0x1 != 0 {
		if len(p) < 4 {
			return 0, errors.New("short trun")
		}
		dataStart += int64(int32(binary.BigEndian.Uint32(p)))
		p = p[4:]
	}
	firstFlags, hasFirst := defFlags, false
	if fl&0x4 != 0 {
		if len(p) < 4 {
			return 0, errors.New("short trun")
		}
		firstFlags, hasFirst = binary.BigEndian.Uint32(p), true
		p = p[4:]
	}
	per := 0
	for _, bit := range []uint32{0x100, 0x200, 0x400, 0x800} {
		if fl&bit != 0 {
			per += 4
		}
	}
	if n < 0 || len(p) < n*per {
		return 0, fmt.Errorf("trun of %d samples in %d bytes", n, len(p))
	}
	for i := 0; i < n; i++ {
		s := Sample{Duration: defDur, Size: defSize}
		flags := defFlags
		if i == 0 && hasFirst {
			flags = firstFlags
		}
		if fl&0x100 != 0 {
			s.Duration, p = binary.BigEndian.Uint32(p), p[4:]
		}
		if fl&0x200 != 0 {
			s.Size, p = binary.BigEndian.Uint32(p), p[4:]
		}
		if fl&0x400 != 0 {
			flags, p = binary.BigEndian.Uint32(p), p[4:]
		}
		if fl&0x800 != 0 {
			s.CTO, p = int32(binary.BigEndian.Uint32(p)), p[4:]
		}
		s.Sync = flags&0x00010000 == 0 // not sample_is_non_sync_sample
		f.Samples = append(f.Samples, s)
	}
	return dataStart, nil
}

// parseAvcC returns the first SPS and PPS of an avcC payload.
func parseAvcC(p []byte) (sps, pps []byte) {
	if len(p) < 6 {
		return nil, nil
	}
	n, p := int(p[5]&0x1f), p[6:]
	for i := 0; i < n && len(p) >= 2; i++ {
		l := int(binary.BigEndian.Uint16(p))
		if len(p) < 2+l {
			return nil, nil
		}
		if i == 0 {
			sps = append([]byte(nil), p[2:2+l]...)
		}
		p = p[2+l:]
	}
	if len(p) < 1 {
		return sps, nil
	}
	n, p = int(p[0]), p[1:]
	if n > 0 && len(p) >= 2 {
		if l := int(binary.BigEndian.Uint16(p)); len(p) >= 2+l {
			pps = append([]byte(nil), p[2:2+l]...)
		}
	}
	return sps, pps
}
