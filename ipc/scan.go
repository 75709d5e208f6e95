package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxDepth bounds the nesting of msgpack containers in a message.
const MaxDepth = 16

// ErrLength means a msgpack string, binary, array or map header claims more
// elements or bytes than the packet holds.
var ErrLength = errors.New("msgpack length exceeds the packet")

// scan walks one msgpack value in b without allocating and checks that every
// length header fits in what is left of the packet, that containers nest at
// most MaxDepth deep, and that nothing follows the value. The msgpack
// decoder sizes slices and maps from their headers, so without this a
// 14-byte packet claiming 2³² release ids makes it allocate 32 GiB: a peer
// could kill the producer.
func scan(b []byte) error {
	i, err := scanValues(b, 0)
	if err != nil {
		return err
	}
	if i != len(b) {
		return ErrTrailing
	}
	return nil
}

// scanOne checks the value at b[*i] like scan and advances *i past it.
func scanOne(b []byte, i *int) error {
	j, err := scanValues(b, *i)
	if err != nil {
		return err
	}
	*i = j
	return nil
}

// scanValues walks one value starting at b[i] and returns the index after it.
func scanValues(b []byte, i int) (int, error) {
	// stack[d] counts the values still to read at depth d.
	var stack [MaxDepth + 1]int
	depth := 0
	stack[0] = 1
	for {
		for depth >= 0 && stack[depth] == 0 {
			depth--
		}
		if depth < 0 {
			break
		}
		stack[depth]--
		if i >= len(b) {
			return i, fmt.Errorf("%w: value at byte %d is missing", ErrLength, i)
		}
		c := b[i]
		i++
		var skip, elems int // bytes of payload to skip, values inside a container
		switch {
		case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		case c >= 0x80 && c <= 0x8f:
			elems = 2 * int(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			elems = int(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			skip = int(c & 0x1f)
		default:
			n, hdr, isMap, isArr, ok := sized(c, b[i:])
			if !ok {
				return i, fmt.Errorf("%w: header 0x%02x at byte %d", ErrLength, c, i-1)
			}
			i += hdr
			switch {
			case isMap:
				if n > (len(b)-i)/2 {
					return i, fmt.Errorf("%w: map of %d entries at byte %d, %d bytes left", ErrLength, n, i, len(b)-i)
				}
				elems = 2 * n
			case isArr:
				elems = n
			default:
				skip = n
			}
		}
		if elems > len(b)-i {
			return i, fmt.Errorf("%w: container of %d values at byte %d, %d bytes left", ErrLength, elems, i, len(b)-i)
		}
		if skip > len(b)-i {
			return i, fmt.Errorf("%w: %d bytes at byte %d, %d left", ErrLength, skip, i, len(b)-i)
		}
		i += skip
		if elems > 0 {
			if depth == MaxDepth {
				return i, fmt.Errorf("%w: containers nested deeper than %d", ErrMalformed, MaxDepth)
			}
			depth++
			stack[depth] = elems
		}
	}
	return i, nil
}

// sized decodes the headers that carry a length or a fixed-size payload. It
// returns the payload length (bytes, or values for arrays and maps) and the
// header's own extra bytes.
func sized(c byte, b []byte) (n, hdr int, isMap, isArr, ok bool) {
	u := func(size int) (int, bool) {
		if len(b) < size {
			return 0, false
		}
		switch size {
		case 1:
			return int(b[0]), true
		case 2:
			return int(binary.BigEndian.Uint16(b)), true
		default:
			return int(binary.BigEndian.Uint32(b)), true
		}
	}
	var size int
	switch c {
	case 0xcc, 0xd0:
		return 1, 0, false, false, true
	case 0xcd, 0xd1:
		return 2, 0, false, false, true
	case 0xce, 0xd2, 0xca:
		return 4, 0, false, false, true
	case 0xcf, 0xd3, 0xcb:
		return 8, 0, false, false, true
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 plus the type byte
		return 1 + 1<<(c-0xd4), 0, false, false, true
	case 0xc4, 0xd9:
		size = 1
	case 0xc5, 0xda:
		size = 2
	case 0xc6, 0xdb:
		size = 4
	case 0xc7, 0xc8, 0xc9: // ext 8/16/32: length, then a type byte
		size = 1 << (c - 0xc7)
		n, ok = u(size)
		return n + 1, size, false, false, ok
	case 0xdc:
		n, ok = u(2)
		return n, 2, false, true, ok
	case 0xdd:
		n, ok = u(4)
		return n, 4, false, true, ok
	case 0xde:
		n, ok = u(2)
		return n, 2, true, false, ok
	case 0xdf:
		n, ok = u(4)
		return n, 4, true, false, ok
	default: // 0xc1 is never used
		return 0, 0, false, false, false
	}
	n, ok = u(size)
	return n, size, false, false, ok
}
