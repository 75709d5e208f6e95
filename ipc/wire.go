package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The msgpack subset of the protocol (docs/PROTOCOL.md §3), written and read
// by hand for every message: one encoder and one decoder per message type
// (message_codec.go) over the primitives below. The encoder writes the
// shortest form of every value, keys in the order of the struct's fields;
// the decoder accepts every integer width for every integer field and
// checks the value against the field's range, takes nil as the zero
// value, skips unknown keys, and bounds every length it reads by the bytes
// left in the packet before it allocates anything: a 14-byte packet
// claiming 2³² release ids is an error, not a 32 GiB allocation.

// appendMapLen, appendArrayLen, appendStr, appendBin, appendUint and
// appendInt write one msgpack header or value in its shortest form.

func appendMapLen(b []byte, n int) []byte   { return appendLen(b, n, 0x80, 0xde) }
func appendArrayLen(b []byte, n int) []byte { return appendLen(b, n, 0x90, 0xdc) }

// appendLen writes a container header: fix is its fix form's high nibble,
// c16 its 16-bit form (the 32-bit one follows it).
func appendLen(b []byte, n int, fix, c16 byte) []byte {
	switch {
	case n < 16:
		return append(b, fix|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, c16), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, c16+1), uint32(n))
	}
}

func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// appendBin writes v as msgpack bin; nil is msgpack nil.
func appendBin(b []byte, v []byte) []byte {
	if v == nil {
		return append(b, 0xc0)
	}
	switch n := len(v); {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, v...)
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

// appendUints writes the values of an array of integers (Release's
// leases, up to 64 a packet for a consumer and more for a test): into room
// grown once, without append's checks per value.
func appendUints(b []byte, vs []uint64) []byte {
	n := len(b)
	b = slices.Grow(b, 9*len(vs))[:n+9*len(vs)]
	for _, v := range vs {
		switch {
		case v <= 0x7f:
			b[n] = byte(v)
			n++
		case v <= math.MaxUint8:
			b[n], b[n+1] = 0xcc, byte(v)
			n += 2
		case v <= math.MaxUint16:
			b[n] = 0xcd
			binary.BigEndian.PutUint16(b[n+1:], uint16(v))
			n += 3
		case v <= math.MaxUint32:
			b[n] = 0xce
			binary.BigEndian.PutUint32(b[n+1:], uint32(v))
			n += 5
		default:
			b[n] = 0xcf
			binary.BigEndian.PutUint64(b[n+1:], v)
			n += 9
		}
	}
	return b[:n]
}

// appendInt writes a signed value; a non-negative one in the unsigned
// formats, as PROTOCOL.md §3 shows.
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

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// Keyed forms: a map entry with a string key.

func appendKeyUint(b []byte, k string, v uint64) []byte { return appendUint(appendStr(b, k), v) }
func appendKeyInt(b []byte, k string, v int64) []byte   { return appendInt(appendStr(b, k), v) }
func appendKeyStr(b []byte, k, v string) []byte         { return appendStr(appendStr(b, k), v) }

// fieldError is a decode failure of one field: its path in the message
// ("caps.planes[1].fd") and what is wrong with it. Its sentinel is
// ErrMalformed for a value of the wrong msgpack type, ErrInvalid for a
// value out of the field's range.
type fieldError struct {
	sentinel error
	path     string
	what     string // follows the path: " = 300 does not fit its type uint8", ": expected …"
}

func (e *fieldError) Error() string { return e.sentinel.Error() + ": " + e.path + e.what }
func (e *fieldError) Unwrap() error { return e.sentinel }

// reader decodes the msgpack values of one packet's body. The first error
// sticks: every later read returns a zero value, so a decoder reads on to
// its end and the error is checked once.
type reader struct {
	b     []byte
	i     int
	depth int  // containers open at i, the body map included
	short bool // next ran past the end
	err   error
}

// failf records a failure that is not about one field: a length beyond
// the packet (ErrLength), nesting too deep (ErrMalformed).
func (r *reader) failf(sentinel error, format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{sentinel}, a...)...)
	}
	r.i = len(r.b)
}

// fieldFail records a failure of field key.
func (r *reader) fieldFail(sentinel error, key []byte, what string) {
	if r.err == nil {
		r.err = &fieldError{sentinel: sentinel, path: string(key), what: what}
	}
	r.i = len(r.b)
}

// wrongType records a value of the wrong msgpack type for field key, or a
// value missing at the end of the packet.
func (r *reader) wrongType(key []byte, want string, c byte) {
	if r.short {
		r.failf(ErrLength, "value at byte %d is missing", r.i)
		return
	}
	r.fieldFail(ErrMalformed, key, fmt.Sprintf(": expected %s, found %s (0x%02x)", want, describe(c), c))
}

// prefix puts name in front of the path of a field error that occurred
// inside the map or array element called name ("caps", "planes[1]").
func (r *reader) prefix(name string) {
	var fe *fieldError
	if !errors.As(r.err, &fe) {
		return
	}
	if fe.path == "" {
		fe.path = name
	} else {
		fe.path = name + "." + fe.path
	}
}

// fields reads a map, the value of field key (nil: the body), and calls
// field with each of its keys: field reads the key's value, or skips it
// (r.skip) for a key it does not know (PROTOCOL.md §3).
func (r *reader) fields(key []byte, field func(k []byte)) {
	n := r.mapLen(key)
	if r.err != nil {
		r.end()
		return
	}
	for j := 0; j < n && r.err == nil; j++ {
		if k := r.key(); r.err == nil {
			field(k)
		}
	}
	r.end()
	if r.err != nil && key != nil {
		r.prefix(string(key))
	}
}

// array reads the array of field key into a slice, each element with
// elem (a closure over r: a function value that took r as an argument
// would move every reader to the heap); nil reads as a nil slice, an empty
// array as an empty one. More than max elements (0: no limit but the
// packet's size) is an invalid value.
func array[T any](r *reader, key []byte, max int, elem func(e *T)) []T {
	if r.isNil() {
		return nil
	}
	n := r.arrayLen(key)
	defer r.end()
	if r.err != nil {
		return nil
	}
	if max > 0 && n > max {
		r.fieldFail(ErrInvalid, key, fmt.Sprintf(" has %d elements, at most %d", n, max))
		return nil
	}
	s := make([]T, n)
	for i := range s {
		if elem(&s[i]); r.err != nil {
			r.prefix(string(key) + "[" + strconv.Itoa(i) + "]")
			return nil
		}
	}
	return s
}

// done returns the decoder's error, or ErrTrailing when bytes follow the
// body.
func (r *reader) done() error {
	if r.err == nil && r.i != len(r.b) {
		return ErrTrailing
	}
	return r.err
}

// next returns the next byte. Past the end it returns 0xc1, which is no
// msgpack value, and sets short: every caller fails on 0xc1 through
// wrongType (or skip), which then reports the missing value. (A call to
// report it here would keep next from being inlined.)
func (r *reader) next() byte {
	if r.i < len(r.b) {
		c := r.b[r.i]
		r.i++
		return c
	}
	r.short = true
	return 0xc1
}

// take returns the next n bytes (not copied).
func (r *reader) take(n int) []byte {
	if n < 0 || n > len(r.b)-r.i {
		r.failf(ErrLength, "%d bytes at byte %d, %d left", n, r.i, len(r.b)-r.i)
		return nil
	}
	s := r.b[r.i : r.i+n : r.i+n]
	r.i += n
	return s
}

// be reads an n-byte (1, 2, 4 or 8) big-endian unsigned integer.
func (r *reader) be(n int) uint64 {
	s := r.take(n)
	switch len(s) {
	case 1:
		return uint64(s[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(s))
	case 4:
		return uint64(binary.BigEndian.Uint32(s))
	case 8:
		return binary.BigEndian.Uint64(s)
	}
	return 0
}

// mapLen reads the header of a map (nil: an empty one) and opens it; the
// caller reads its entries and then calls end. A map whose entries could
// not fit in the rest of the packet (2 bytes each at least) is an error.
func (r *reader) mapLen(key []byte) int { return r.open(key, 0x80, 0xde, 2, "a map") }

// arrayLen is mapLen for arrays (1 byte an element at least).
func (r *reader) arrayLen(key []byte) int { return r.open(key, 0x90, 0xdc, 1, "an array") }

// open reads a container header: fix is its fix form's high nibble, c16
// its 16-bit form (the 32-bit one follows it), least the bytes an element
// takes at least.
func (r *reader) open(key []byte, fix, c16 byte, least int, what string) int {
	r.depth++
	var n int
	switch c := r.next(); {
	case c&0xf0 == fix:
		n = int(c & 0x0f)
	case c == c16:
		n = int(r.be(2))
	case c == c16+1:
		n = int(r.be(4))
	case c == 0xc0:
		return 0
	default:
		r.wrongType(key, what, c)
		return 0
	}
	if n > (len(r.b)-r.i)/least {
		r.failf(ErrLength, "%s of %d at byte %d, %d bytes left", what[strings.IndexByte(what, ' ')+1:], n, r.i, len(r.b)-r.i)
		return 0
	}
	return n
}

// isNil reports (and consumes) a msgpack nil at the reader's position.
func (r *reader) isNil() bool {
	if r.i < len(r.b) && r.b[r.i] == 0xc0 {
		r.i++
		return true
	}
	return false
}

// end closes the container mapLen or arrayLen opened.
func (r *reader) end() { r.depth-- }

// bytes reads a str or bin value (nil: none) without copying it. Keys,
// strings and byte strings all read through it: PROTOCOL.md §3 accepts
// bin for a string and str for a byte string.
func (r *reader) bytes(key []byte, want string) []byte {
	switch c := r.next(); {
	case c>>5 == 0x5:
		return r.take(int(c & 0x1f))
	case c == 0xd9, c == 0xc4:
		return r.take(int(r.be(1)))
	case c == 0xda, c == 0xc5:
		return r.take(int(r.be(2)))
	case c == 0xdb, c == 0xc6:
		return r.take(int(r.be(4)))
	case c == 0xc0:
		return nil
	default:
		r.wrongType(key, want, c)
		return nil
	}
}

// key reads a map key, a str (or bin); switch string(key) on it does not
// allocate.
func (r *reader) key() []byte {
	if r.i < len(r.b) {
		// The fast path: a fixstr, which every key of the protocol is.
		if c := r.b[r.i]; c>>5 == 0x5 {
			if end := r.i + 1 + int(c&0x1f); end <= len(r.b) {
				k := r.b[r.i+1 : end : end]
				r.i = end
				return k
			}
		} else if (c < 0xd9 || c > 0xdb) && (c < 0xc4 || c > 0xc6) {
			r.failf(ErrMalformed, "the map key at byte %d is %s (0x%02x), not a string", r.i, describe(c), c)
			return nil
		}
	}
	return r.bytes(nil, "")
}

func (r *reader) str(key []byte) string { return string(r.bytes(key, "a string")) }

// bin reads a byte string and copies it: the message must not reference
// the packet. nil stays nil.
func (r *reader) bin(key []byte) []byte {
	v := r.bytes(key, "bytes")
	if v == nil {
		return nil
	}
	return append(make([]byte, 0, len(v)), v...)
}

func (r *reader) bool(key []byte) bool {
	switch c := r.next(); c {
	case 0xc2, 0xc0:
		return false
	case 0xc3:
		return true
	default:
		r.wrongType(key, "a boolean", c)
		return false
	}
}

// integer reads any msgpack integer (nil reads as 0): its magnitude, and
// whether it is negative.
func (r *reader) integer(key []byte) (mag uint64, neg bool) {
	c := r.next()
	switch {
	case c <= 0x7f:
		return uint64(c), false
	case c == 0xcf, c == 0xce, c == 0xcd, c == 0xcc:
		return r.be(1 << (c - 0xcc)), false
	case c >= 0xe0:
		return uint64(-int64(int8(c))), true
	case c == 0xc0:
		return 0, false
	case c >= 0xd0 && c <= 0xd3:
		n := 1 << (c - 0xd0)
		v := r.be(n)
		s := int64(v<<(64-8*n)) >> (64 - 8*n) // sign-extend
		if s < 0 {
			return uint64(-s), true // -MinInt64 wraps to itself: its magnitude as uint64 is right
		}
		return uint64(s), false
	}
	r.wrongType(key, "an integer", c)
	return 0, false
}

// uint reads an unsigned field of the given bits and checks its range.
func (r *reader) uint(key []byte, bits int) uint64 {
	if r.i < len(r.b) && r.b[r.i] <= 0x7f { // a positive fixint fits every field
		r.i++
		return uint64(r.b[r.i-1])
	}
	v, neg := r.integer(key)
	if neg || bits < 64 && v>>bits != 0 {
		r.outOfRange(key, v, neg, "uint"+strconv.Itoa(bits))
		return 0
	}
	return v
}

func (r *reader) u64(key []byte) uint64 { return r.uint(key, 64) }
func (r *reader) u32(key []byte) uint32 { return uint32(r.uint(key, 32)) }
func (r *reader) u16(key []byte) uint16 { return uint16(r.uint(key, 16)) }
func (r *reader) u8(key []byte) uint8   { return uint8(r.uint(key, 8)) }

func (r *reader) i64(key []byte) int64 {
	v, neg := r.integer(key)
	switch {
	case neg && v <= 1<<63:
		return -int64(v)
	case !neg && v <= math.MaxInt64:
		return int64(v)
	}
	r.outOfRange(key, v, neg, "int64")
	return 0
}

func (r *reader) outOfRange(key []byte, v uint64, neg bool, typ string) {
	s := strconv.FormatUint(v, 10)
	if neg {
		s = "-" + s
	}
	r.fieldFail(ErrInvalid, key, " = "+s+" does not fit its type "+typ)
}

// skip skips one value of any type (an unknown key's), checking its
// lengths against the packet and its nesting against MaxDepth.
func (r *reader) skip() {
	// todo[d] counts the values still to skip in the container d levels
	// below the reader's depth; todo[0] is the value itself.
	var todo [MaxDepth + 1]int
	d := 0
	todo[0] = 1
	for r.err == nil {
		for d >= 0 && todo[d] == 0 {
			d--
		}
		if d < 0 {
			return
		}
		todo[d]--
		c := r.next()
		var n int      // bytes to skip
		var values int // values inside a container
		switch {
		case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		case c>>4 == 0x8:
			values = 2 * int(c&0x0f)
		case c>>4 == 0x9:
			values = int(c & 0x0f)
		case c>>5 == 0x5:
			n = int(c & 0x1f)
		case c == 0xcc, c == 0xd0:
			n = 1
		case c == 0xcd, c == 0xd1:
			n = 2
		case c == 0xce, c == 0xd2, c == 0xca:
			n = 4
		case c == 0xcf, c == 0xd3, c == 0xcb:
			n = 8
		case c >= 0xd4 && c <= 0xd8: // fixext 1, 2, 4, 8, 16 and their type byte
			n = 1 + 1<<(c-0xd4)
		case c == 0xc4, c == 0xd9:
			n = int(r.be(1))
		case c == 0xc5, c == 0xda:
			n = int(r.be(2))
		case c == 0xc6, c == 0xdb:
			n = int(r.be(4))
		case c >= 0xc7 && c <= 0xc9: // ext 8, 16, 32: length, type byte, data
			n = int(r.be(1<<(c-0xc7))) + 1
		case c == 0xdc:
			values = int(r.be(2))
		case c == 0xdd:
			values = int(r.be(4))
		case c == 0xde:
			values = 2 * int(r.be(2))
		case c == 0xdf:
			values = 2 * int(r.be(4))
		case r.short:
			r.failf(ErrLength, "value at byte %d is missing", r.i)
			return
		default: // 0xc1 is never used
			r.failf(ErrMalformed, "byte 0x%02x at %d is no msgpack value", c, r.i-1)
			return
		}
		if values > len(r.b)-r.i {
			r.failf(ErrLength, "container of %d values at byte %d, %d bytes left", values, r.i, len(r.b)-r.i)
			return
		}
		r.take(n)
		if values > 0 || c>>4 == 0x8 || c>>4 == 0x9 || (c >= 0xdc && c <= 0xdf) {
			if r.depth+d+1 > MaxDepth {
				r.failf(ErrMalformed, "containers nested deeper than %d", MaxDepth)
				return
			}
			if values > 0 {
				d++
				todo[d] = values
			}
		}
	}
}

// describe names the msgpack type of a header byte, for errors.
func describe(c byte) string {
	switch {
	case c <= 0x7f, c >= 0xe0, c >= 0xcc && c <= 0xd3:
		return "an integer"
	case c>>4 == 0x8, c == 0xde, c == 0xdf:
		return "a map"
	case c>>4 == 0x9, c == 0xdc, c == 0xdd:
		return "an array"
	case c>>5 == 0x5, c >= 0xd9 && c <= 0xdb:
		return "a string"
	case c >= 0xc4 && c <= 0xc6:
		return "bytes"
	case c == 0xc2, c == 0xc3:
		return "a boolean"
	case c == 0xca, c == 0xcb:
		return "a float"
	case c == 0xc0:
		return "nil"
	case c == 0xc1:
		return "no msgpack value"
	}
	return "an extension"
}
