package ipc

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Errors returned by Decode and Encode. Decode wraps them in *DecodeError.
var (
	// ErrEmpty means a zero-length packet.
	ErrEmpty = errors.New("empty packet")
	// ErrTooLarge means a message longer than MaxMessageSize.
	ErrTooLarge = errors.New("message larger than the maximum size")
	// ErrTrailing means bytes after the message body.
	ErrTrailing = errors.New("trailing bytes after message body")
	// ErrInvalid means a message whose fields are out of range.
	ErrInvalid = errors.New("invalid message")
	// ErrMalformed means a packet that is not a message at all: a body that
	// is not a msgpack map, containers nested too deep. It also matches
	// ErrInvalid.
	ErrMalformed = fmt.Errorf("%w: malformed body", ErrInvalid)
)

// DecodeError describes a packet that could not be decoded.
type DecodeError struct {
	Type Type  // tag of the packet (0 when the packet was empty)
	Len  int   // packet length in bytes
	Err  error // what went wrong; errors.Is works through it
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("ipc: decode %v (%d bytes): %v", e.Type, e.Len, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// encoder state is pooled: a msgpack.Encoder allocates on creation, and the
// producer encodes a Frame per consumer per frame.
type encState struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

// decState is a pooled decoder, for the same reason as encState.
type decState struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

// Codec encodes and decodes messages. The zero value is not usable; use
// NewCodec. A Codec is safe for concurrent use.
type Codec struct {
	encs sync.Pool
	decs sync.Pool
}

// NewCodec returns a codec.
func NewCodec() *Codec {
	c := &Codec{}
	c.encs.New = func() any {
		s := &encState{}
		s.enc = msgpack.NewEncoder(&s.buf)
		s.enc.UseCompactInts(true)
		return s
	}
	c.decs.New = func() any {
		s := &decState{}
		s.dec = msgpack.NewDecoder(&s.r)
		return s
	}
	return c
}

// Append encodes m and appends the packet (type tag and body) to dst.
func (c *Codec) Append(dst []byte, m Message) ([]byte, error) {
	if u, ok := m.(*Unknown); ok {
		return nil, fmt.Errorf("ipc: encode %v: cannot encode an unknown message", u.Tag)
	}
	switch m := m.(type) {
	case *Frame:
		return checkSize(append(dst, byte(TypeFrame)), dst, appendFrame, m)
	case *Release:
		return checkSize(append(dst, byte(TypeRelease)), dst, appendRelease, m)
	}
	s := c.encs.Get().(*encState)
	defer c.encs.Put(s)
	s.buf.Reset()
	s.buf.WriteByte(byte(m.Type()))
	if err := s.enc.Encode(m); err != nil {
		return nil, fmt.Errorf("ipc: encode %v: %w", m.Type(), err)
	}
	if s.buf.Len() > MaxMessageSize {
		return nil, fmt.Errorf("ipc: encode %v (%d bytes): %w", m.Type(), s.buf.Len(), ErrTooLarge)
	}
	return append(dst, s.buf.Bytes()...), nil
}

// checkSize appends m's body after the tag already in b and checks the
// packet's size; on error dst is returned unchanged.
func checkSize[M Message](b, dst []byte, appendBody func([]byte, M) []byte, m M) ([]byte, error) {
	start := len(dst)
	b = appendBody(b, m)
	if n := len(b) - start; n > MaxMessageSize {
		return nil, fmt.Errorf("ipc: encode %v (%d bytes): %w", m.Type(), n, ErrTooLarge)
	}
	return b, nil
}

// Encode returns the packet for m.
func (c *Codec) Encode(m Message) ([]byte, error) { return c.Append(nil, m) }

// newMessage returns an empty message for a known type, or nil.
func newMessage(t Type) Message {
	switch t {
	case TypeHello:
		return &Hello{}
	case TypeWelcome:
		return &Welcome{}
	case TypeReject:
		return &Reject{}
	case TypeAnnounce:
		return &Announce{}
	case TypeFrame:
		return &Frame{}
	case TypeForget:
		return &Forget{}
	case TypeCaps:
		return &Caps{}
	case TypeEOS:
		return &EOS{}
	case TypeRelease:
		return &Release{}
	case TypeRequestKeyframe:
		return &RequestKeyframe{}
	case TypePing:
		return &Ping{}
	case TypePong:
		return &Pong{}
	case TypeBye:
		return &Bye{}
	case TypeRing:
		return &Ring{}
	}
	return nil
}

// Decode parses one packet. A packet of an unknown type decodes to *Unknown
// with a nil error, so that newer peers interoperate; callers ignore it.
// Every other failure is a *DecodeError. The returned message does not
// reference p.
func (c *Codec) Decode(p []byte) (Message, error) {
	if len(p) == 0 {
		return nil, &DecodeError{Err: ErrEmpty}
	}
	t := Type(p[0])
	if len(p) > MaxMessageSize {
		return nil, &DecodeError{Type: t, Len: len(p), Err: ErrTooLarge}
	}
	m := newMessage(t)
	if m == nil {
		return &Unknown{Tag: t}, nil
	}
	// Bodies are maps (see the package doc); msgpack would also fill a
	// struct from nil or from an array of its fields in order.
	if len(p) < 2 || !isMapHeader(p[1]) {
		return nil, &DecodeError{Type: t, Len: len(p), Err: fmt.Errorf("%w: not a msgpack map", ErrMalformed)}
	}
	if err := scan(p[1:]); err != nil {
		return nil, &DecodeError{Type: t, Len: len(p), Err: err}
	}
	switch m := m.(type) {
	case *Frame:
		if err := decodeFrame(p[1:], m); err != nil {
			return nil, &DecodeError{Type: t, Len: len(p), Err: err}
		}
		if err := validate(m); err != nil {
			return nil, &DecodeError{Type: t, Len: len(p), Err: err}
		}
		return m, nil
	case *Release:
		if err := decodeRelease(p[1:], m); err != nil {
			return nil, &DecodeError{Type: t, Len: len(p), Err: err}
		}
		return m, nil
	}
	s := c.decs.Get().(*decState)
	defer func() {
		s.r.Reset(nil)
		c.decs.Put(s)
	}()
	s.r.Reset(p[1:])
	s.dec.Reset(&s.r)
	if err := s.dec.Decode(m); err != nil {
		return nil, &DecodeError{Type: t, Len: len(p), Err: err}
	}
	if s.r.Len() != 0 {
		return nil, &DecodeError{Type: t, Len: len(p), Err: ErrTrailing}
	}
	if err := checkRanges(p[1:], m); err != nil {
		return nil, &DecodeError{Type: t, Len: len(p), Err: err}
	}
	if err := validate(m); err != nil {
		return nil, &DecodeError{Type: t, Len: len(p), Err: err}
	}
	return m, nil
}

// MaxPlanes bounds the planes of a Caps or Frame.
const MaxPlanes = 4

func validate(m Message) error {
	switch m := m.(type) {
	case *Announce:
		if len(m.Surfaces) == 0 {
			return fmt.Errorf("%w: announce with no surfaces", ErrInvalid)
		}
		n := 0
		for i, s := range m.Surfaces {
			if s.NFDs == 0 || s.NFDs > MaxPlanes {
				return fmt.Errorf("%w: surface %d (id %d) has nfds %d, want 1..%d", ErrInvalid, i, s.ID, s.NFDs, MaxPlanes)
			}
			if s.Kind != KindMemfd && s.Kind != KindDMABuf && s.Kind != KindCUDA {
				return fmt.Errorf("%w: surface %d (id %d) has unknown kind %d", ErrInvalid, i, s.ID, s.Kind)
			}
			if s.Device != nil && len(s.Device.UUID) != DeviceUUIDSize {
				return fmt.Errorf("%w: surface %d (id %d) has a device UUID of %d bytes, want %d", ErrInvalid, i, s.ID, len(s.Device.UUID), DeviceUUIDSize)
			}
			if s.Kind == KindCUDA && (s.Device == nil || s.NFDs != 1) {
				return fmt.Errorf("%w: cuda surface %d (id %d) needs a device and exactly 1 fd (has %d)", ErrInvalid, i, s.ID, s.NFDs)
			}
			n += int(s.NFDs)
		}
		if n > MaxFDsPerMessage {
			return fmt.Errorf("%w: announce needs %d fds, at most %d fit one message", ErrInvalid, n, MaxFDsPerMessage)
		}
	case *Caps:
		return validateCaps(m)
	case *Welcome:
		return validateCaps(&m.Caps)
	case *Frame:
		if len(m.Planes) > MaxPlanes {
			return fmt.Errorf("%w: frame has %d planes, at most %d", ErrInvalid, len(m.Planes), MaxPlanes)
		}
	case *Hello:
		switch m.Policy {
		case "", PolicyQueue, PolicyLatest:
		default:
			return fmt.Errorf("%w: unknown policy %q", ErrInvalid, m.Policy)
		}
	}
	return nil
}

func validateCaps(c *Caps) error {
	if len(c.Planes) > MaxPlanes {
		return fmt.Errorf("%w: caps have %d planes, at most %d", ErrInvalid, len(c.Planes), MaxPlanes)
	}
	return nil
}

func isMapHeader(b byte) bool { return b>>4 == 0x8 || b == 0xde || b == 0xdf }
