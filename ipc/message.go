package ipc

import "time"

// Protocol version spoken by this package. A peer accepts any minor version of
// its own major version.
const (
	VersionMajor = 1
	// VersionMinor 1 added KindCUDA and Surface.Device.
	VersionMinor = 1
)

// MaxMessageSize caps one packet (type tag plus body). Receivers read into a
// buffer of this size and reject anything larger as truncated.
const MaxMessageSize = 64 << 10

// MaxFDsPerMessage is the most file descriptors one Announce may carry. The
// kernel's SCM_MAX_FD is 253.
const MaxFDsPerMessage = 253

// Type is the one-byte tag in front of every message.
type Type uint8

// Message types. Values are part of the wire protocol and never change.
const (
	TypeHello           Type = 1
	TypeWelcome         Type = 2
	TypeReject          Type = 3
	TypeAnnounce        Type = 4
	TypeFrame           Type = 5
	TypeForget          Type = 6
	TypeCaps            Type = 7
	TypeEOS             Type = 8
	TypeRelease         Type = 9
	TypeRequestKeyframe Type = 10
	TypePing            Type = 11
	TypePong            Type = 12
	TypeBye             Type = 13
	TypeRing            Type = 14
)

var typeNames = [...]string{
	TypeHello: "Hello", TypeWelcome: "Welcome", TypeReject: "Reject", TypeAnnounce: "Announce",
	TypeFrame: "Frame", TypeForget: "Forget", TypeCaps: "Caps", TypeEOS: "EOS", TypeRelease: "Release",
	TypeRequestKeyframe: "RequestKeyframe", TypePing: "Ping", TypePong: "Pong", TypeBye: "Bye", TypeRing: "Ring",
}

func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return "Type(" + itoa(int(t)) + ")"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// Message is implemented by every message of the protocol, and only by
// them: each has its own encoder and decoder (message_codec.go).
type Message interface {
	// Type returns the wire tag of the message.
	Type() Type
	// appendBody appends the msgpack map of the message.
	appendBody(b []byte) []byte
	// decodeBody reads the message from b, the body map and nothing
	// after it.
	decodeBody(b []byte) error
}

// Policy says what the producer does with a frame when a consumer is at its
// budget (max_in_flight).
type Policy string

// Delivery policies.
const (
	// PolicyQueue delivers every frame while the consumer is below its budget
	// and skips (drops) frames while it is at its budget.
	PolicyQueue Policy = "queue"
	// PolicyLatest is PolicyQueue plus one pending slot: while the consumer is
	// at its budget the newest frame waits in the slot (replacing an older
	// one), and it is delivered as soon as the consumer releases a lease. A
	// consumer that wants "the next frame after a trigger" gets it at once.
	PolicyLatest Policy = "latest"
)

// Hello flags.
const (
	// HelloLossless asks the producer not to skip frames for this consumer.
	// The producer grants it only when its policy allows; see Welcome.Flags.
	HelloLossless uint32 = 1 << 0
	// HelloReleaseRing asks for a release ring (PROTOCOL.md §4.15): the
	// consumer then releases leases by writing their ids into a memory
	// shared with the producer instead of sending Release messages. The
	// producer grants it (Welcome.Flags) to queue-policy consumers that do
	// not replay, and sends the Ring message right after the Welcome.
	HelloReleaseRing uint32 = 1 << 1
)

// Hello is the first message a consumer sends after connecting.
type Hello struct {
	Major       uint16 `msgpack:"major"`
	Minor       uint16 `msgpack:"minor"`
	Name        string `msgpack:"name"`   // free text naming the consumer, for logs and metrics
	Stream      string `msgpack:"stream"` // stream to subscribe to, e.g. "raw" or "h264"
	MaxInFlight uint32 `msgpack:"max_in_flight"`
	MaxHoldMS   uint32 `msgpack:"max_hold_ms"` // 0: the producer's default
	Policy      Policy `msgpack:"policy"`      // "" means queue
	Flags       uint32 `msgpack:"flags"`
	// ReplayFromNS asks for frames from the producer's replay buffer whose
	// CLOCK_MONOTONIC capture time is after this value (0: live only).
	ReplayFromNS int64 `msgpack:"replay_from_ns,omitempty"`
}

// Type implements Message.
func (*Hello) Type() Type { return TypeHello }

// Plane is the layout of one plane inside a surface.
type Plane struct {
	Offset uint32 `msgpack:"offset"` // bytes from the start of the surface's fd
	Stride uint32 `msgpack:"stride"` // bytes per row
	Size   uint32 `msgpack:"size"`   // bytes of the plane (stride × rows)
	FD     uint8  `msgpack:"fd"`     // index of the surface fd that holds this plane (multi-fd surfaces)
}

// Caps describes the frames of a stream.
type Caps struct {
	Format string  `msgpack:"format"` // "NV12", "H264"
	Width  uint32  `msgpack:"width"`
	Height uint32  `msgpack:"height"`
	FPSNum uint32  `msgpack:"fps_n"`
	FPSDen uint32  `msgpack:"fps_d"`
	Planes []Plane `msgpack:"planes,omitempty"` // raw formats only
	// Codec data for encoded formats (H.264: "avc1.64001f"), informational.
	Codec string `msgpack:"codec,omitempty"`
}

// Type implements Message.
func (*Caps) Type() Type { return TypeCaps }

// Pool describes the producer's surface pool for a stream.
type Pool struct {
	Min         uint32 `msgpack:"min"`
	Max         uint32 `msgpack:"max"`
	SurfaceSize uint64 `msgpack:"surface_size"`
	Kind        Kind   `msgpack:"kind"`
}

// Welcome accepts a Hello.
type Welcome struct {
	Major       uint16 `msgpack:"major"`
	Minor       uint16 `msgpack:"minor"`
	Session     uint64 `msgpack:"session"`
	Stream      string `msgpack:"stream"`
	MaxInFlight uint32 `msgpack:"max_in_flight"` // granted budget (may be below the asked one)
	MaxHoldMS   uint32 `msgpack:"max_hold_ms"`   // granted deadline
	Policy      Policy `msgpack:"policy"`
	Flags       uint32 `msgpack:"flags"` // granted Hello flags
	Caps        Caps   `msgpack:"caps"`
	Pool        Pool   `msgpack:"pool"`
}

// Type implements Message.
func (*Welcome) Type() Type { return TypeWelcome }

// Code is a numeric reason carried by Reject and Bye.
type Code uint16

// Reject and Bye codes. Values are part of the wire protocol.
const (
	CodeOK              Code = 0  // normal close
	CodeVersion         Code = 1  // unsupported protocol major version
	CodeUnknownStream   Code = 2  // Hello named a stream that does not exist
	CodeDenied          Code = 3  // peer credentials not allowed
	CodeTooMany         Code = 4  // connection limit reached
	CodeProtocol        Code = 5  // malformed or unexpected message
	CodeMaxHold         Code = 6  // a lease was held past max_hold: evicted
	CodeShutdown        Code = 7  // producer is stopping
	CodeBadRelease      Code = 8  // Release named a lease that is not live
	CodeInvalidArgument Code = 9  // Hello fields out of range
	CodeLossless        Code = 10 // lossless requested but not allowed
	CodeNoCapacity      Code = 11 // Reject: the pool cannot back another budget; the reason says what is left
	CodeReclaimed       Code = 12 // Bye: the pool ran dry and this consumer held the most beyond its fair share
	CodeRateLimit       Code = 13 // Bye: control messages (Ping, RequestKeyframe, ...) faster than the read budget
)

var codeNames = map[Code]string{
	CodeOK: "ok", CodeVersion: "version", CodeUnknownStream: "unknown_stream", CodeDenied: "denied",
	CodeTooMany: "too_many", CodeProtocol: "protocol", CodeMaxHold: "max_hold", CodeShutdown: "shutdown",
	CodeBadRelease: "bad_release", CodeInvalidArgument: "invalid_argument", CodeLossless: "lossless",
	CodeNoCapacity: "no_capacity", CodeReclaimed: "reclaimed", CodeRateLimit: "rate_limit",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return "code(" + itoa(int(c)) + ")"
}

// Reject refuses a Hello; the producer closes the connection after it.
type Reject struct {
	Code   Code   `msgpack:"code"`
	Reason string `msgpack:"reason"`
}

// Type implements Message.
func (*Reject) Type() Type { return TypeReject }

// Kind is the kind of memory behind a surface's fds.
type Kind uint8

// Surface kinds.
const (
	KindMemfd  Kind = 1
	KindDMABuf Kind = 2
	// KindCUDA is GPU memory allocated with the CUDA driver's cuMemCreate
	// and exported as a POSIX fd (cuMemExportToShareableHandle). The fd is
	// not mmap-able: an importer passes it to cuMemImportFromShareableHandle
	// on the device Surface.Device names, maps Surface.Size bytes (the whole
	// allocation, a multiple of the driver's granularity, which the importer
	// cannot query) and reads the planes at their offsets from the mapping.
	// Since minor version 1.
	KindCUDA Kind = 3
)

func (k Kind) String() string {
	switch k {
	case KindMemfd:
		return "memfd"
	case KindDMABuf:
		return "dmabuf"
	case KindCUDA:
		return "cuda"
	}
	return "kind(" + itoa(int(k)) + ")"
}

// Surface is one entry of an Announce.
type Surface struct {
	ID   uint32 `msgpack:"id"`
	Gen  uint32 `msgpack:"gen"`  // bumped whenever slot ID gets new memory
	Size uint64 `msgpack:"size"` // bytes mappable from each fd (the largest fd's size for multi-fd surfaces); for KindCUDA the allocation's size
	Kind Kind   `msgpack:"kind"`
	NFDs uint8  `msgpack:"nfds"` // how many of the message's fds belong to this surface (≥ 1)
	// Device is set for memory that lives on a GPU (KindCUDA always, and
	// DMA-BUFs exported from GPU memory); nil for host memory. Since minor
	// version 1; older decoders ignore it.
	Device *Device `msgpack:"device,omitempty"`
}

// Device describes the GPU that holds a surface's memory.
type Device struct {
	// UUID is the GPU's 16-byte UUID (cuDeviceGetUuid_v2), not its ordinal:
	// ordinals differ between processes with different
	// CUDA_VISIBLE_DEVICES.
	UUID []byte `msgpack:"uuid"`
	// NoCPUMap says that the surface's fds cannot be mmap'd by the CPU (a
	// DMA-BUF of discrete-GPU memory fails mmap with ENOTSUPP; a KindCUDA
	// fd is not mappable at all): a consumer must use the memory through
	// the device, and the SDK refuses to map it.
	NoCPUMap bool `msgpack:"no_cpu_map,omitempty"`
}

// DeviceUUIDSize is the length of Device.UUID.
const DeviceUUIDSize = 16

// CPUMappable reports whether a consumer may mmap the surface's fds.
func (s *Surface) CPUMappable() bool {
	return s.Kind != KindCUDA && (s.Device == nil || !s.Device.NoCPUMap)
}

// Announce introduces surfaces and carries their fds, in order: the first
// Surfaces[0].NFDs fds belong to Surfaces[0], and so on.
type Announce struct {
	Surfaces []Surface `msgpack:"surfaces"`
}

// Type implements Message.
func (*Announce) Type() Type { return TypeAnnounce }

// NFDs returns how many fds the message must carry.
func (a *Announce) NFDs() int {
	n := 0
	for _, s := range a.Surfaces {
		n += int(s.NFDs)
	}
	return n
}

// Frame flags.
const (
	FlagKeyframe uint32 = 1 << 0 // encoded: access unit is a keyframe (IDR)
	FlagDiscont  uint32 = 1 << 1 // frames were skipped for this consumer before this one
	FlagReplay   uint32 = 1 << 2 // frame comes from the replay buffer, not live
	FlagHeader   uint32 = 1 << 3 // encoded: access unit carries SPS/PPS
)

// Frame delivers one frame: a lease on a region of an announced surface.
type Frame struct {
	Lease   uint64 `msgpack:"lease"` // lease id, unique for the connection; Release it
	Surface uint32 `msgpack:"surface"`
	Gen     uint32 `msgpack:"gen"`
	Seq     uint64 `msgpack:"seq"`    // stream sequence number, +1 per frame produced
	Offset  uint32 `msgpack:"offset"` // payload region inside the surface's first fd
	Size    uint32 `msgpack:"size"`   // payload bytes
	PTS     int64  `msgpack:"pts"`    // pipeline timestamps in ns; -1 when unknown
	DTS     int64  `msgpack:"dts"`
	Dur     int64  `msgpack:"dur"`
	MonoNS  int64  `msgpack:"mono_ns"` // capture time, CLOCK_MONOTONIC
	RealNS  int64  `msgpack:"real_ns"` // capture time, CLOCK_REALTIME
	Flags   uint32 `msgpack:"flags"`
	Dropped uint32 `msgpack:"dropped,omitempty"` // frames skipped for this consumer since its previous Frame
	// Planes overrides Caps.Planes for this frame when set (adopted buffers
	// whose layout differs from the stream's).
	Planes []Plane           `msgpack:"planes,omitempty"`
	Meta   map[string][]byte `msgpack:"meta,omitempty"` // user metadata
}

// Type implements Message.
func (*Frame) Type() Type { return TypeFrame }

// Keyframe reports whether FlagKeyframe is set.
func (f *Frame) Keyframe() bool { return f.Flags&FlagKeyframe != 0 }

// Capture returns the capture time on CLOCK_MONOTONIC as a duration since boot.
func (f *Frame) Capture() time.Duration { return time.Duration(f.MonoNS) }

// Forget tells a consumer to drop surfaces: close their fds and unmap them.
// The producer sends it only for surfaces on which the consumer holds no lease.
type Forget struct {
	IDs []uint32 `msgpack:"ids"`
}

// Type implements Message.
func (*Forget) Type() Type { return TypeForget }

// EOS says the stream ended (pipeline stopped or camera lost). Frames may
// follow later; the first one after EOS carries FlagDiscont.
type EOS struct {
	Reason string `msgpack:"reason"`
}

// Type implements Message.
func (*EOS) Type() Type { return TypeEOS }

// Release ends leases. Ids unknown to the producer (never granted, or already
// released) are a protocol error (CodeBadRelease).
type Release struct {
	Leases []uint64 `msgpack:"leases"`
}

// Type implements Message.
func (*Release) Type() Type { return TypeRelease }

// RequestKeyframe asks the producer to make the encoder emit a keyframe soon.
// The producer rate-limits it.
type RequestKeyframe struct{}

// Type implements Message.
func (*RequestKeyframe) Type() Type { return TypeRequestKeyframe }

// Ping asks the peer for a Pong with the same token.
type Ping struct {
	Token  uint64 `msgpack:"token"`
	MonoNS int64  `msgpack:"mono_ns"`
}

// Type implements Message.
func (*Ping) Type() Type { return TypePing }

// Pong answers a Ping.
type Pong struct {
	Token  uint64 `msgpack:"token"`
	MonoNS int64  `msgpack:"mono_ns"` // the Ping's
}

// Type implements Message.
func (*Pong) Type() Type { return TypePong }

// Bye closes a connection with a reason. Either side may send it; the sender
// closes the socket after it.
type Bye struct {
	Code   Code   `msgpack:"code"`
	Reason string `msgpack:"reason"`
}

// Type implements Message.
func (*Bye) Type() Type { return TypeBye }

// Ring gives a consumer its release ring: the message carries one fd, a
// memfd of Size bytes to map read-write and shared (layout: PROTOCOL.md
// §4.15, internal/ring). The producer sends it right after a Welcome that
// granted HelloReleaseRing, before any Announce.
type Ring struct {
	Size uint32 `msgpack:"size"`
}

// Type implements Message.
func (*Ring) Type() Type { return TypeRing }

// Unknown is what Decode returns for a message type this version does not
// know. Receivers ignore it.
type Unknown struct {
	Tag Type
}

// Type implements Message.
func (u *Unknown) Type() Type { return u.Tag }
