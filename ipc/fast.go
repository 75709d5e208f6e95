package ipc

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Frame and Release are the whole hot path: one of each per frame per
// consumer. They are encoded and decoded by hand instead of through the
// msgpack library's reflection: the producer and a consumer at 30 fps run
// this code with cold caches on every wake-up, where the small footprint
// matters more than in any micro-benchmark. The wire format is the same
// msgpack map the library produces and accepts (see codec_test's
// differential tests); integer fields are range-checked instead of truncated.

// appendFrame appends the body of f.
func appendFrame(b []byte, f *Frame) []byte {
	n := 12 // lease … real_ns and flags are always written
	if f.Dropped != 0 {
		n++
	}
	if len(f.Planes) > 0 {
		n++
	}
	if len(f.Meta) > 0 {
		n++
	}
	b = append(b, 0x80|byte(n))
	b = appendKeyUint(b, "lease", f.Lease)
	b = appendKeyUint(b, "surface", uint64(f.Surface))
	b = appendKeyUint(b, "gen", uint64(f.Gen))
	b = appendKeyUint(b, "seq", f.Seq)
	b = appendKeyUint(b, "offset", uint64(f.Offset))
	b = appendKeyUint(b, "size", uint64(f.Size))
	b = appendKeyInt(b, "pts", f.PTS)
	b = appendKeyInt(b, "dts", f.DTS)
	b = appendKeyInt(b, "dur", f.Dur)
	b = appendKeyInt(b, "mono_ns", f.MonoNS)
	b = appendKeyInt(b, "real_ns", f.RealNS)
	b = appendKeyUint(b, "flags", uint64(f.Flags))
	if f.Dropped != 0 {
		b = appendKeyUint(b, "dropped", uint64(f.Dropped))
	}
	if len(f.Planes) > 0 {
		b = appendStr(b, "planes")
		b = append(b, 0x90|byte(len(f.Planes)))
		for _, p := range f.Planes {
			b = append(b, 0x84)
			b = appendKeyUint(b, "offset", uint64(p.Offset))
			b = appendKeyUint(b, "stride", uint64(p.Stride))
			b = appendKeyUint(b, "size", uint64(p.Size))
			b = appendKeyUint(b, "fd", uint64(p.FD))
		}
	}
	if len(f.Meta) > 0 {
		b = appendStr(b, "meta")
		b = appendMapLen(b, len(f.Meta))
		for k, v := range f.Meta {
			b = appendStr(b, k)
			b = appendBin(b, v)
		}
	}
	return b
}

// appendRelease appends the body of r.
func appendRelease(b []byte, r *Release) []byte {
	b = append(b, 0x81)
	b = appendStr(b, "leases")
	if r.Leases == nil {
		return append(b, 0xc0)
	}
	b = appendArrayLen(b, len(r.Leases))
	for _, l := range r.Leases {
		b = appendUint(b, l)
	}
	return b
}

func appendKeyUint(b []byte, k string, v uint64) []byte { return appendUint(appendStr(b, k), v) }
func appendKeyInt(b []byte, k string, v int64) []byte   { return appendInt(appendStr(b, k), v) }

func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xda)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0xdb)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return append(b, s...)
}

func appendBin(b []byte, v []byte) []byte {
	if v == nil {
		return append(b, 0xc0)
	}
	switch n := len(v); {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xc5)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0xc6)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return append(b, v...)
}

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
	}
}

func appendMapLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
	}
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
	}
}

func appendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
	}
}

// reader decodes msgpack values from a body that scan already checked: every
// length fits in the packet, so reads never run past the end; they still
// check, so a bug here cannot turn into a panic.
type reader struct {
	b   []byte
	i   int
	err error
}

func (r *reader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
	}
}

func (r *reader) byte() byte {
	if r.i >= len(r.b) {
		r.fail("unexpected end of body")
		return 0xc0
	}
	c := r.b[r.i]
	r.i++
	return c
}

func (r *reader) take(n int) []byte {
	if n < 0 || n > len(r.b)-r.i {
		r.fail("unexpected end of body")
		r.i = len(r.b)
		return nil
	}
	s := r.b[r.i : r.i+n]
	r.i += n
	return s
}

func (r *reader) be(n int) uint64 {
	s := r.take(n)
	var v uint64
	for _, c := range s {
		v = v<<8 | uint64(c)
	}
	return v
}

// length reads a container or string header of the given family.
func (r *reader) mapLen() (int, bool) {
	switch c := r.byte(); {
	case c>>4 == 0x8:
		return int(c & 0x0f), true
	case c == 0xde:
		return int(r.be(2)), true
	case c == 0xdf:
		return int(r.be(4)), true
	case c == 0xc0:
		return 0, false
	default:
		r.fail("expected a map, found 0x%02x", c)
		return 0, false
	}
}

func (r *reader) arrayLen() (int, bool) {
	switch c := r.byte(); {
	case c>>4 == 0x9:
		return int(c & 0x0f), true
	case c == 0xdc:
		return int(r.be(2)), true
	case c == 0xdd:
		return int(r.be(4)), true
	case c == 0xc0:
		return 0, false
	default:
		r.fail("expected an array, found 0x%02x", c)
		return 0, false
	}
}

// key reads a string (or bin: some msgpack libraries send keys as bin)
// without copying it; switch string(key) does not allocate.
func (r *reader) key() []byte {
	switch c := r.byte(); {
	case c>>5 == 0x5:
		return r.take(int(c & 0x1f))
	case c == 0xd9:
		return r.take(int(r.be(1)))
	case c == 0xda:
		return r.take(int(r.be(2)))
	case c == 0xdb:
		return r.take(int(r.be(4)))
	case c == 0xc4, c == 0xc5, c == 0xc6:
		return r.take(int(r.be(1 << (c - 0xc4))))
	default:
		r.fail("expected a string, found 0x%02x", c)
		return nil
	}
}

func (r *reader) bin() []byte {
	c := r.byte()
	var n int
	switch {
	case c == 0xc0:
		return nil
	case c >= 0xc4 && c <= 0xc6:
		n = int(r.be(1 << (c - 0xc4)))
	case c>>5 == 0x5:
		n = int(c & 0x1f)
	case c >= 0xd9 && c <= 0xdb:
		n = int(r.be(1 << (c - 0xd9)))
	default:
		r.fail("expected bytes, found 0x%02x", c)
		return nil
	}
	return append([]byte{}, r.take(n)...)
}

// int reads any msgpack integer (nil reads as 0) and checks it is within
// [lo, hi].
func (r *reader) int(key []byte, lo int64, hi uint64) (neg int64, pos uint64) {
	c := r.byte()
	var u uint64
	var s int64
	signed := false
	switch {
	case c <= 0x7f:
		u = uint64(c)
	case c >= 0xe0:
		s, signed = int64(int8(c)), true
	case c == 0xc0:
	case c >= 0xcc && c <= 0xcf:
		u = r.be(1 << (c - 0xcc))
	case c >= 0xd0 && c <= 0xd3:
		v := r.be(1 << (c - 0xd0))
		switch c {
		case 0xd0:
			s = int64(int8(v))
		case 0xd1:
			s = int64(int16(v))
		case 0xd2:
			s = int64(int32(v))
		default:
			s = int64(v)
		}
		signed = true
	default:
		r.fail("%s: expected an integer, found 0x%02x", key, c)
		return 0, 0
	}
	if signed && s >= 0 {
		u, signed = uint64(s), false
	}
	if signed {
		if s < lo {
			r.fail("%s: %d out of range", key, s)
			return 0, 0
		}
		return s, 0
	}
	if u > hi {
		r.fail("%s: %d out of range (max %d)", key, u, hi)
		return 0, 0
	}
	return 0, u
}

func (r *reader) u64(key []byte) uint64 { _, v := r.int(key, 0, math.MaxUint64); return v }
func (r *reader) u32(key []byte) uint32 { _, v := r.int(key, 0, math.MaxUint32); return uint32(v) }
func (r *reader) u8(key []byte) uint8   { _, v := r.int(key, 0, math.MaxUint8); return uint8(v) }

func (r *reader) i64(key []byte) int64 {
	n, p := r.int(key, math.MinInt64, math.MaxInt64)
	if n != 0 {
		return n
	}
	return int64(p)
}

// skip skips one value of any type.
func (r *reader) skip() {
	start := r.i
	if err := scanOne(r.b, &r.i); err != nil {
		r.i = start
		r.fail("skip value: %v", err)
	}
}

func decodeFrame(body []byte, f *Frame) error {
	r := reader{b: body}
	n, _ := r.mapLen()
	for k := 0; k < n && r.err == nil; k++ {
		switch key := r.key(); string(key) {
		case "lease":
			f.Lease = r.u64(key)
		case "surface":
			f.Surface = r.u32(key)
		case "gen":
			f.Gen = r.u32(key)
		case "seq":
			f.Seq = r.u64(key)
		case "offset":
			f.Offset = r.u32(key)
		case "size":
			f.Size = r.u32(key)
		case "pts":
			f.PTS = r.i64(key)
		case "dts":
			f.DTS = r.i64(key)
		case "dur":
			f.Dur = r.i64(key)
		case "mono_ns":
			f.MonoNS = r.i64(key)
		case "real_ns":
			f.RealNS = r.i64(key)
		case "flags":
			f.Flags = r.u32(key)
		case "dropped":
			f.Dropped = r.u32(key)
		case "planes":
			np, ok := r.arrayLen()
			if !ok {
				continue
			}
			if np > MaxPlanes {
				r.fail("frame has %d planes, at most %d", np, MaxPlanes)
				break
			}
			f.Planes = make([]Plane, np)
			for i := range f.Planes {
				decodePlane(&r, &f.Planes[i])
			}
		case "meta":
			nm, ok := r.mapLen()
			if !ok {
				continue
			}
			f.Meta = make(map[string][]byte, nm)
			for j := 0; j < nm && r.err == nil; j++ {
				mk := string(r.key())
				f.Meta[mk] = r.bin()
			}
		default:
			r.skip()
		}
	}
	if r.err == nil && r.i != len(r.b) {
		return ErrTrailing
	}
	return r.err
}

func decodePlane(r *reader, p *Plane) {
	n, _ := r.mapLen()
	for k := 0; k < n && r.err == nil; k++ {
		switch key := r.key(); string(key) {
		case "offset":
			p.Offset = r.u32(key)
		case "stride":
			p.Stride = r.u32(key)
		case "size":
			p.Size = r.u32(key)
		case "fd":
			p.FD = r.u8(key)
		default:
			r.skip()
		}
	}
}

func decodeRelease(body []byte, m *Release) error {
	r := reader{b: body}
	n, _ := r.mapLen()
	for k := 0; k < n && r.err == nil; k++ {
		switch key := r.key(); string(key) {
		case "leases":
			nl, ok := r.arrayLen()
			if !ok {
				continue
			}
			m.Leases = make([]uint64, nl)
			for i := range m.Leases {
				m.Leases[i] = r.u64(key)
			}
		default:
			r.skip()
		}
	}
	if r.err == nil && r.i != len(r.b) {
		return ErrTrailing
	}
	return r.err
}
