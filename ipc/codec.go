package ipc

import (
	"errors"
	"fmt"
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
	// is not a msgpack map, a value of the wrong msgpack type (a string or
	// a float for an integer), containers nested too deep. It also matches
	// ErrInvalid.
	ErrMalformed = fmt.Errorf("%w: malformed body", ErrInvalid)
	// ErrLength means a msgpack string, binary, array or map header that
	// claims more elements or bytes than the packet holds, or a packet cut
	// short.
	ErrLength = errors.New("msgpack length exceeds the packet")
)

// MaxDepth bounds the nesting of msgpack containers in a message, the body
// map included, also inside values of unknown keys.
const MaxDepth = 16

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

// Codec encodes and decodes messages: one hand-written encoder and decoder
// per message type (message_codec.go), with the range checks and size
// limits of PROTOCOL.md §3. The zero value is ready to use, and a Codec is
// safe for concurrent use; NewCodec returns one.
type Codec struct{}

// NewCodec returns a codec.
func NewCodec() *Codec { return &Codec{} }

// Append encodes m and appends the packet (type tag and body) to dst. On
// error dst is returned unchanged.
func (c *Codec) Append(dst []byte, m Message) ([]byte, error) {
	start := len(dst)
	var b []byte
	// Frame and Release, one each per frame and consumer, are called
	// statically: a few ns less than through the interface.
	switch m := m.(type) {
	case *Release:
		b = m.appendBody(append(dst, byte(TypeRelease)))
	case *Frame:
		b = m.appendBody(append(dst, byte(TypeFrame)))
	case *Unknown:
		return nil, fmt.Errorf("ipc: encode %v: cannot encode an unknown message", m.Tag)
	default:
		b = m.appendBody(append(dst, byte(m.Type())))
	}
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
// Every other failure is a *DecodeError, whose Err matches (errors.Is)
// ErrEmpty, ErrTooLarge, ErrLength or ErrTrailing for a packet of the
// wrong size, ErrMalformed for one that is not a message (a body that is
// no map, a value of the wrong msgpack type, nesting deeper than
// MaxDepth), and ErrInvalid without ErrMalformed for a message with a
// value out of its field's range or rules (an integer that does not fit,
// an unknown policy, too many planes). The returned message does not
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
	// Bodies are maps (see the package doc); nil or an array are not.
	if len(p) < 2 || !isMapHeader(p[1]) {
		return nil, &DecodeError{Type: t, Len: len(p), Err: fmt.Errorf("%w: not a msgpack map", ErrMalformed)}
	}
	err := m.decodeBody(p[1:])
	if err == nil {
		err = validate(m)
	}
	if err != nil {
		return nil, &DecodeError{Type: t, Len: len(p), Err: err}
	}
	return m, nil
}

// MaxPlanes bounds the planes of a Caps or Frame.
const MaxPlanes = 4

// validate checks what a message's types cannot say (PROTOCOL.md §3);
// the decoders already bounded the planes of Caps and Frame.
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
	case *Hello:
		switch m.Policy {
		case "", PolicyQueue, PolicyLatest:
		default:
			return fmt.Errorf("%w: unknown policy %q", ErrInvalid, m.Policy)
		}
	}
	return nil
}

func isMapHeader(b byte) bool { return b>>4 == 0x8 || b == 0xde || b == 0xdf }
