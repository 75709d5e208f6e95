package sdk

import (
	"time"

	"github.com/framehub/framehub/ipc"
)

// The SDK's own vocabulary: what a subscription asks for, what the producer
// granted, what a stream and a surface are. The values of Policy, Code and
// Kind are the wire protocol's (docs/PROTOCOL.md §4), but the types are the
// SDK's: package ipc is the wire codec, not API (see its package doc).

// Policy is what the producer does with a new frame while the consumer holds
// its whole budget (Options.MaxInFlight).
type Policy string

// Delivery policies.
const (
	// PolicyQueue skips (drops) frames while the consumer is at its
	// budget. It is the default.
	PolicyQueue Policy = "queue"
	// PolicyLatest keeps the newest of those frames waiting, replacing an
	// older one, and delivers it as soon as the consumer releases a frame:
	// for consumers that want "the next frame after a trigger".
	PolicyLatest Policy = "latest"
)

// Code is the reason a producer gives when it refuses a subscription
// (RejectError) or ends one (ByeError). Its values are the protocol's
// (docs/PROTOCOL.md §4.14); a producer may send codes this SDK does not
// name, which String shows as code(N).
type Code uint16

// Reject and Bye codes.
const (
	CodeOK              Code = 0  // normal close
	CodeVersion         Code = 1  // unsupported protocol major version
	CodeUnknownStream   Code = 2  // no stream of the name asked for
	CodeDenied          Code = 3  // this process's uid or gid is not allowed
	CodeTooMany         Code = 4  // connection limit reached
	CodeProtocol        Code = 5  // malformed or unexpected message
	CodeMaxHold         Code = 6  // a frame was held past MaxHold: evicted
	CodeShutdown        Code = 7  // the producer is stopping
	CodeBadRelease      Code = 8  // a release named a frame that was not leased
	CodeInvalidArgument Code = 9  // an option out of range (a name too long, an unknown policy)
	CodeLossless        Code = 10 // Lossless asked for and not allowed
	CodeNoCapacity      Code = 11 // the stream's pool cannot back another budget now: retry later
	CodeReclaimed       Code = 12 // the pool ran dry and this consumer held the most beyond its share: evicted
	CodeRateLimit       Code = 13 // control messages faster than the producer's allowance
)

func (c Code) String() string { return ipc.Code(c).String() }

// Kind is the kind of memory behind a frame's surface.
type Kind uint8

// Surface kinds.
const (
	// KindMemfd is shared host memory (a sealed, read-only memfd).
	KindMemfd Kind = 1
	// KindDMABuf is a DMA-BUF: a camera's, an ISP's or a GPU's buffer, or
	// host memory from a DMA heap. Reads are bracketed with
	// DMA_BUF_IOCTL_SYNC.
	KindDMABuf Kind = 2
	// KindCUDA is GPU memory exported by the CUDA driver, which the CPU
	// cannot map: package sdk/cuda imports it.
	KindCUDA Kind = 3
)

func (k Kind) String() string { return ipc.Kind(k).String() }

// Plane is where one plane of a raw frame lies in its surface.
type Plane struct {
	Offset int // bytes from the start of the surface's fd FD
	Stride int // bytes from one row to the next
	Size   int // bytes of the plane (stride × rows)
	FD     int // which of the surface's fds holds the plane (0 but for multi-fd surfaces)
}

// Caps describe the frames of a stream.
type Caps struct {
	Format         string  // "NV12", "H264", …
	Width, Height  int     // pixels
	FPSNum, FPSDen int     // frame rate as a fraction; 0/… when unknown or variable
	Planes         []Plane // plane layout of raw formats; nil for encoded ones
	// Codec names the codec of an encoded stream, e.g. "avc1.64001f"
	// (RFC 6381); informational.
	Codec string
}

// Subscription is what the producer granted a connection (Client.Subscription).
type Subscription struct {
	// Session is the producer's id of the connection, for its logs.
	Session uint64
	Stream  string
	// MaxInFlight and MaxHold are the granted budget and deadline: the
	// producer may grant less than Options asked for.
	MaxInFlight int
	MaxHold     time.Duration
	Policy      Policy
	// Lossless is set when the producer granted Options.Lossless.
	Lossless bool
	// ReleaseRing is set when releases go through memory shared with the
	// producer instead of messages (see Options.NoReleaseRing).
	ReleaseRing bool
	// Pool describes the stream's surfaces.
	Pool Pool
}

// Pool describes the surfaces a stream's frames lie in.
type Pool struct {
	Min, Max    int   // surfaces allocated up front, and at the most
	SurfaceSize int64 // bytes of each
	Kind        Kind
}

// Surface describes the surface a frame lies in (Frame.Surface).
type Surface struct {
	ID, Gen uint32 // the producer's id of the surface, and its generation
	// Size is the bytes mappable from each of its fds; for KindCUDA, the
	// allocation's size.
	Size int64
	Kind Kind
	// Device is the GPU holding the memory; nil for host memory.
	Device *Device
}

// Device is the GPU that holds a surface's memory.
type Device struct {
	// UUID is the GPU's 16-byte UUID (as cuDeviceGetUuid_v2 gives it); the
	// slice must not be modified.
	UUID []byte
	// NoCPUMap is set when the CPU cannot map the memory.
	NoCPUMap bool
}

// CPUMappable reports whether the CPU can map the surface: Frame.Data and
// Frame.Plane fail with ErrNoCPUMapping when it cannot.
func (s Surface) CPUMappable() bool {
	return s.Kind != KindCUDA && (s.Device == nil || !s.Device.NoCPUMap)
}

// capsOf converts the wire's caps.
func capsOf(c ipc.Caps) Caps {
	return Caps{Format: c.Format, Width: int(c.Width), Height: int(c.Height), FPSNum: int(c.FPSNum), FPSDen: int(c.FPSDen),
		Planes: planesOf(c.Planes), Codec: c.Codec}
}

func planesOf(ps []ipc.Plane) []Plane {
	if ps == nil {
		return nil
	}
	out := make([]Plane, len(ps))
	for i, p := range ps {
		out[i] = Plane{Offset: int(p.Offset), Stride: int(p.Stride), Size: int(p.Size), FD: int(p.FD)}
	}
	return out
}

// subscriptionOf converts what a Welcome granted.
func subscriptionOf(w *ipc.Welcome) Subscription {
	return Subscription{
		Session: w.Session, Stream: w.Stream, MaxInFlight: int(w.MaxInFlight),
		MaxHold: time.Duration(w.MaxHoldMS) * time.Millisecond, Policy: Policy(w.Policy),
		Lossless: w.Flags&ipc.HelloLossless != 0, ReleaseRing: w.Flags&ipc.HelloReleaseRing != 0,
		Pool: Pool{Min: int(w.Pool.Min), Max: int(w.Pool.Max), SurfaceSize: int64(w.Pool.SurfaceSize), Kind: Kind(w.Pool.Kind)},
	}
}

// surfaceOf converts an Announce entry.
func surfaceOf(s *ipc.Surface) Surface {
	out := Surface{ID: s.ID, Gen: s.Gen, Size: int64(s.Size), Kind: Kind(s.Kind)}
	if s.Device != nil {
		out.Device = &Device{UUID: s.Device.UUID, NoCPUMap: s.Device.NoCPUMap}
	}
	return out
}
