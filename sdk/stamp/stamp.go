package stamp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sync"
)

// Format constants; see the package documentation for their meaning.
const (
	// Rows is the number of Y-plane rows occupied by the stamp region.
	Rows = 8
	// HeaderSize is the size in bytes of the header at the start of row 0.
	HeaderSize = 32
	// Version is the stamp format version this package writes and accepts.
	Version = 1
	// MinWidth is the smallest frame width (in pixels) that can carry a stamp.
	MinWidth = 64
	// MaxRegionWidth caps the region width: RW = min(width, MaxRegionWidth).
	MaxRegionWidth = 256
	// Magic is the four-byte marker at the start of every stamp.
	Magic = "FHST"
)

// Header field offsets within row 0.
const (
	offMagic    = 0
	offVersion  = 4
	offWidth    = 6
	offRows     = 8
	offReserved = 10
	offSeq      = 12
	offMono     = 20
	offCRC      = 28
)

// Sentinel errors. Errors returned by this package wrap exactly one of them
// and name the offending values; test with errors.Is.
var (
	// ErrNoStamp reports that the region holds no stamp of this format:
	// wrong magic, version, region width or row count (for example a zeroed,
	// invalidated or never-stamped surface).
	ErrNoStamp = errors.New("stamp: no stamp")
	// ErrChecksum reports that the stamp's CRC-32C does not match the region
	// contents: the region is corrupt or torn.
	ErrChecksum = errors.New("stamp: checksum mismatch")
	// ErrSeq reports a valid stamp for a different frame than expected: the
	// surface has been reused.
	ErrSeq = errors.New("stamp: sequence mismatch")
	// ErrGeometry reports invalid arguments: width below MinWidth, stride
	// below width, or a buffer too short to hold the stamp region.
	ErrGeometry = errors.New("stamp: invalid geometry")
)

// consts holds precomputed, read-only data shared by all calls.
type consts struct {
	// crc is the CRC-32C (Castagnoli) table.
	crc *crc32.Table
	// ramp[i] = uint8(i): row r of the pattern is ramp[b:b+RW] for its
	// first byte b, and the row 0 tail is ramp[32:RW] XOR the low byte of
	// seq.
	ramp [2 * MaxRegionWidth]byte
}

// shared returns the package's precomputed data. It is built on first use
// (so binaries that never stamp pay nothing at start-up) and never modified
// afterwards: this package-level value is read-only state, safe for
// concurrent use. hash/crc32 uses the SSE4.2/ARMv8 CRC instructions for the
// Castagnoli polynomial where available.
var shared = sync.OnceValue(func() *consts {
	c := &consts{crc: crc32.MakeTable(crc32.Castagnoli)}
	for i := range c.ramp {
		c.ramp[i] = uint8(i)
	}
	return c
})

// Info is the content of a valid stamp.
type Info struct {
	// Seq is the frame sequence number.
	Seq uint64
	// MonoNS is the capture time in nanoseconds on the producer's
	// monotonic clock.
	MonoNS int64
}

// RegionWidth returns the stamp region width RW for a frame of the given
// width: min(width, MaxRegionWidth). It does not validate width.
func RegionWidth(width int) int {
	return min(width, MaxRegionWidth)
}

// region validates the geometry and returns the region width.
func region(y []byte, stride, width int) (int, error) {
	if width < MinWidth {
		return 0, fmt.Errorf("%w: width %d is below the minimum %d", ErrGeometry, width, MinWidth)
	}
	if stride < width {
		return 0, fmt.Errorf("%w: stride %d is below width %d", ErrGeometry, stride, width)
	}
	rw := RegionWidth(width)
	if stride > (math.MaxInt-rw)/(Rows-1) {
		return 0, fmt.Errorf("%w: stride %d is too large", ErrGeometry, stride)
	}
	if need := (Rows-1)*stride + rw; len(y) < need {
		return 0, fmt.Errorf("%w: Y plane of %d bytes is shorter than the %d bytes the stamp region needs (stride %d, width %d)",
			ErrGeometry, len(y), need, stride, width)
	}
	return rw, nil
}

// checksum computes the CRC-32C defined by the specification: hdr (the 28
// header bytes before the crc field), then row 0 bytes HeaderSize..rw-1,
// then bytes 0..rw-1 of rows 1..Rows-1 of y.
//
// hdr is usually a stack array; it is hashed with the table-driven loop in
// updateSmall because crc32.Update makes its argument escape to the heap.
func checksum(hdr, y []byte, stride, rw int) uint32 {
	tab := shared().crc
	crc := updateSmall(0, tab, hdr[:offCRC])
	crc = crc32.Update(crc, tab, y[HeaderSize:rw])
	for r := 1; r < Rows; r++ {
		o := r * stride
		crc = crc32.Update(crc, tab, y[o:o+rw])
	}
	return crc
}

// updateSmall is crc32.Update for short inputs, computed byte by byte with
// the standard (reflected) table.
func updateSmall(crc uint32, tab *crc32.Table, p []byte) uint32 {
	crc = ^crc
	for _, b := range p {
		crc = tab[byte(crc)^b] ^ (crc >> 8)
	}
	return ^crc
}

// Write stamps frame seq, captured at monoNS, into the Y plane y whose rows
// are stride bytes apart and carry width pixels. y must hold at least
// (Rows-1)*stride + RegionWidth(width) bytes (normally the whole Y plane).
// Only the stamp region is written, the magic last.
func Write(y []byte, stride, width int, seq uint64, monoNS int64) error {
	rw, err := region(y, stride, width)
	if err != nil {
		return err
	}
	c := shared()
	// Rows 1..7: byte j = (seq*31 + r*7 + j) mod 256.
	base := uint8(seq * 31)
	for r := 1; r < Rows; r++ {
		b := int(base + uint8(r*7))
		copy(y[r*stride:r*stride+rw], c.ramp[b:b+rw])
	}
	// Row 0 tail: byte j = (seq XOR j) mod 256, eight bytes at a time (RW
	// is a multiple of 8 whenever it is 256; the remainder is done bytewise).
	row0 := y[:rw]
	s := uint8(seq)
	le := binary.LittleEndian
	s8 := uint64(s) * 0x0101010101010101
	j := HeaderSize
	for ; j+8 <= rw; j += 8 {
		le.PutUint64(row0[j:], le.Uint64(c.ramp[j:])^s8)
	}
	for ; j < rw; j++ {
		row0[j] = s ^ uint8(j)
	}
	// Assemble the header privately so that the magic can be stored last.
	var h [HeaderSize]byte
	copy(h[offMagic:], Magic)
	le.PutUint16(h[offVersion:], Version)
	le.PutUint16(h[offWidth:], uint16(rw))
	le.PutUint16(h[offRows:], Rows)
	le.PutUint16(h[offReserved:], 0)
	le.PutUint64(h[offSeq:], seq)
	le.PutUint64(h[offMono:], uint64(monoNS))
	le.PutUint32(h[offCRC:], checksum(h[:], y, stride, rw))
	copy(row0[offVersion:HeaderSize], h[offVersion:])
	copy(row0[offMagic:offVersion], h[offMagic:offVersion])
	return nil
}

// Invalidate destroys the stamp in y by zeroing the 32 header bytes, so that
// Read reports ErrNoStamp until the next Write. A producer calls it before
// overwriting the pixels of a surface in place (see the package
// documentation). The arguments are as for Write.
func Invalidate(y []byte, stride, width int) error {
	if _, err := region(y, stride, width); err != nil {
		return err
	}
	clear(y[:HeaderSize])
	return nil
}

// Read parses and verifies the stamp in the Y plane y (arguments as for
// Write). It returns an error wrapping ErrNoStamp if the header does not
// describe a version-1 stamp for this width, ErrChecksum if the CRC does not
// match, or ErrGeometry for invalid arguments. On error the returned Info is
// zero.
func Read(y []byte, stride, width int) (Info, error) {
	rw, err := region(y, stride, width)
	if err != nil {
		return Info{}, err
	}
	// Copy the header once: if the region is being rewritten concurrently,
	// the fields returned are exactly the ones the checksum covered.
	var hb [HeaderSize]byte
	copy(hb[:], y)
	h := hb[:]
	if string(h[offMagic:offMagic+4]) != Magic {
		return Info{}, fmt.Errorf("%w: magic %q, want %q", ErrNoStamp, string(h[offMagic:offMagic+4]), Magic)
	}
	le := binary.LittleEndian
	if v := le.Uint16(h[offVersion:]); v != Version {
		return Info{}, fmt.Errorf("%w: version %d, want %d", ErrNoStamp, v, Version)
	}
	if w := le.Uint16(h[offWidth:]); int(w) != rw {
		return Info{}, fmt.Errorf("%w: region width %d, want %d (frame width %d)", ErrNoStamp, w, rw, width)
	}
	if n := le.Uint16(h[offRows:]); n != Rows {
		return Info{}, fmt.Errorf("%w: rows %d, want %d", ErrNoStamp, n, Rows)
	}
	stored := le.Uint32(h[offCRC:])
	if got := checksum(h, y, stride, rw); got != stored {
		return Info{}, fmt.Errorf("%w: stamp crc 0x%08x, computed 0x%08x (seq field %d)",
			ErrChecksum, stored, got, le.Uint64(h[offSeq:]))
	}
	return Info{Seq: le.Uint64(h[offSeq:]), MonoNS: int64(le.Uint64(h[offMono:]))}, nil
}

// Verify reads the stamp like Read and additionally checks that it belongs to
// frame wantSeq. If the stamp is valid but for another frame the error wraps
// ErrSeq, names both sequence numbers, and the returned Info describes the
// frame actually found.
func Verify(y []byte, stride, width int, wantSeq uint64) (Info, error) {
	info, err := Read(y, stride, width)
	if err != nil {
		return Info{}, err
	}
	if info.Seq != wantSeq {
		return info, fmt.Errorf("%w: stamp has seq %d, want %d", ErrSeq, info.Seq, wantSeq)
	}
	return info, nil
}
