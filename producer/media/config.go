package media

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/framehub/framehub/producer/surface"
)

// Stream names the pipeline creates on the server.
const (
	StreamRaw  = "raw"
	StreamH264 = "h264"
)

// Source kinds of Config.Source.
const (
	SourceTest      = "test"        // videotestsrc: scrolling colour bars and a timestamp
	SourceV4L2      = "v4l2:"       // v4l2:/dev/videoN
	SourceJetsonCSI = "jetson-csi:" // jetson-csi:N, nvarguscamerasrc sensor-id=N
	SourceLaunch    = "launch:"     // launch:<gst-launch description of a source>
	SourceRTSP      = "rtsp://"     // rtsp://[user:pass@]host[:port]/path: an IP camera's H.264, not re-encoded
)

// DecoderNone disables the raw stream of an rtsp:// source.
const DecoderNone = "none"

// RTSP transports of Config.RTSPTransport.
const (
	TransportTCP  = "tcp"  // RTP interleaved in the RTSP connection (the default)
	TransportUDP  = "udp"  // RTP and RTCP on UDP ports of their own
	TransportAuto = "auto" // UDP, then TCP when no UDP packet comes
)

// EncoderNone disables the h264 stream.
const EncoderNone = "none"

// autoDecoders is the order in which Decoder "" picks the first installed
// H.264 decoder of an rtsp:// source: Jetson, V4L2 stateful then stateless
// M2M decoders, VA (the va plugin, then gstreamer-vaapi), then software.
// Hardware decoders register their elements only where their device
// exists, so "installed" means usable here.
var autoDecoders = []string{"nvv4l2decoder", "v4l2h264dec", "v4l2slh264dec", "vah264dec", "vaapih264dec", "avdec_h264"}

// autoEncoders is the order in which Encoder "" picks the first installed
// H.264 encoder: hardware (Jetson, then V4L2 M2M), then software.
var autoEncoders = []string{"nvv4l2h264enc", "v4l2h264enc", "x264enc", "openh264enc"}

// Config configures a Pipeline. Zero values take the defaults given; call
// Validate (New does) to fill them in.
type Config struct {
	// Source is where frames come from: "test" (default): videotestsrc
	// is-live=true, SMPTE colour bars scrolling 4 pixels a frame and, when
	// timeoverlay is installed (Debian package gstreamer1.0-x), the running
	// time (pattern=ball would cost five times the CPU at 1080p);
	// "v4l2:/dev/videoN": a V4L2 camera, its buffers adopted as DMA-BUFs
	// (io-mode=dmabuf), or io-mode=mmap when the driver cannot export them;
	// "jetson-csi:N": nvarguscamerasrc sensor-id=N, converted by nvvidconv
	// (the VIC) into framehub's memfd pool; "launch:DESC": any gst-launch
	// source description, e.g. "launch:videotestsrc is-live=true
	// pattern=snow". The pipeline converts and scales to Width×Height NV12
	// at FPSNum/FPSDen.
	//
	// "rtsp://[user:pass@]host[:port]/path" is an IP camera: its H.264
	// access units go to the h264 stream as they arrive, neither decoded
	// nor encoded again (camera.go), and its raw stream is decoded only
	// while a raw consumer is subscribed (decoder.go). Credentials in the
	// URL (basic or digest authentication, whichever the camera asks for)
	// never appear in logs or errors: Camera returns the URL without them.
	Source string
	// Width and Height of the raw frames; default 1920×1080 (of an rtsp://
	// source: the camera's own size; given, the decoded frames are scaled
	// to it). Even, ≤ 16384.
	Width, Height int
	// FPSNum/FPSDen is the frame rate; default 30/1. An rtsp:// source has
	// the camera's rate (from its SPS), whatever is set here.
	FPSNum, FPSDen int
	// Format of the raw frames; "NV12" (default) is the only one supported.
	Format string
	// Encoder is the H.264 encoder element: "" picks the first installed of
	// nvv4l2h264enc, v4l2h264enc, x264enc, openh264enc (x264enc with
	// tune=zerolatency and no B-frames); "none" means no h264 stream; anything else is an
	// element name, used with its default properties. An rtsp:// source
	// is not encoded: Encoder must be "".
	Encoder string
	// Decoder is the H.264 decoder of an rtsp:// source's raw stream: ""
	// picks the first installed of nvv4l2decoder, v4l2h264dec,
	// v4l2slh264dec, vah264dec, vaapih264dec, avdec_h264; "none" means no
	// raw stream; anything else is an element name. It runs only while a
	// raw consumer is subscribed. Other sources ignore it.
	Decoder string
	// RTSPTransport is how an rtsp:// source receives RTP: "tcp" (default:
	// interleaved in the RTSP connection, so an I-frame's burst of packets
	// cannot overflow a socket buffer and nothing is lost on the way),
	// "udp", or "auto" (UDP, then TCP if no packet comes within 3 s).
	RTSPTransport string
	// RTSPTimeout is how long an rtsp:// source waits for the camera's
	// answers and packets before it declares the camera gone (EOS to
	// consumers) and reconnects; default 10 s.
	RTSPTimeout time.Duration
	// BitrateKbps is the encoder's target bitrate; default 4000.
	BitrateKbps int
	// GOP is the keyframe interval in frames; default two seconds' worth.
	GOP int
	// RawPoolMin and RawPoolMax bound the memfd buffer pool the source
	// writes into (defaults 4 and 32); RawPoolMax also bounds the copy
	// fallback pool. Frames held by consumers and by the encoder count
	// against RawPoolMax: when it is reached, new frames are dropped at the
	// source (Stats.RawDropped), never overwritten.
	RawPoolMin, RawPoolMax int
	// RawReserve is how many of RawPoolMax the pipeline keeps for itself
	// (the buffer the source fills, the encoder's queued and encoding
	// ones): consumers of the raw stream are promised at most RawPoolMax −
	// RawReserve buffers in all (admission control, package fanout).
	// Default 3.
	RawReserve int
	// H264PoolMax bounds the h264 stream's slab surfaces; default 64. The
	// replay buffer (H264Replay) and the access units consumers hold pin
	// slabs; when none is left the replay buffer sheds its oldest quarter
	// before an access unit is dropped.
	H264PoolMax int
	// H264SlabSize is the size of one h264 surface, a slab into which
	// consecutive access units are packed (slab.go); default 2 MiB. A slab
	// returns to the pool when every access unit in it has been freed.
	// Memfd pages are touched only as access units fill them. Larger
	// access units are dropped and logged.
	H264SlabSize int
	// H264Replay is how long the h264 stream keeps its access units for
	// consumers that ask to replay from a capture time (a restarted
	// recorder resumes after the last access unit it made durable);
	// default 30 s, negative disables it. At 4 Mbit/s 30 s pin ~15 MB
	// (8 slabs of 2 MiB).
	H264Replay time.Duration
	// AllowWritableSurfaces lets the pipeline's memfd pools run on a kernel
	// without F_SEAL_FUTURE_WRITE (see surface.ErrNoFutureWriteSeal), where
	// consumers can write surfaces; by default they refuse to allocate.
	// GStreamer's own memfd pool (internal/gst) seals what the kernel
	// allows: the producer checks the kernel before it makes a pipeline.
	AllowWritableSurfaces bool
	// RetryMin and RetryMax bound the exponential backoff between pipeline
	// restarts after an error; defaults 1 s and 30 s.
	RetryMin, RetryMax time.Duration
	// Logger receives the pipeline's logs; default slog.Default().
	Logger *slog.Logger
}

// Defaults returns the configuration of the defaults given on each field
// (GOP and RawReserve, which depend on other fields, 0; Width and Height
// are 1920×1080, which an rtsp:// source leaves at 0 for the camera's own
// size when neither is given): the values
// Validate gives zero fields, and those of framehub-producer's flags.
func Defaults() Config {
	return Config{
		Source: SourceTest, Width: 1920, Height: 1080, FPSNum: 30, FPSDen: 1, Format: "NV12", BitrateKbps: 4000,
		RawPoolMin: 4, RawPoolMax: 32, H264PoolMax: 64, H264SlabSize: 2 << 20, H264Replay: 30 * time.Second,
		RTSPTransport: TransportTCP, RTSPTimeout: 10 * time.Second, RetryMin: time.Second, RetryMax: 30 * time.Second,
	}
}

// Validate fills in the defaults and checks every field; errors name the
// field and its value. It does not look at the machine (New does).
func (c *Config) Validate() error {
	d := Defaults()
	if c.Source == "" {
		c.Source = d.Source
	}
	src, err := parseSource(c.Source)
	if err != nil {
		return err
	}
	native := src.kind == SourceRTSP && c.Width == 0 && c.Height == 0 // the camera's size
	if c.Width == 0 && c.Height == 0 && !native {
		c.Width, c.Height = d.Width, d.Height
	}
	if c.FPSNum == 0 && c.FPSDen == 0 {
		c.FPSNum, c.FPSDen = d.FPSNum, d.FPSDen
	}
	if c.FPSDen == 0 {
		c.FPSDen = 1
	}
	if c.Format == "" {
		c.Format = d.Format
	}
	if c.BitrateKbps == 0 {
		c.BitrateKbps = d.BitrateKbps
	}
	if c.GOP == 0 && c.FPSNum > 0 && c.FPSDen > 0 {
		c.GOP = max(1, (2*c.FPSNum+c.FPSDen-1)/c.FPSDen)
	}
	if c.RawPoolMin == 0 && c.RawPoolMax == 0 {
		c.RawPoolMin, c.RawPoolMax = d.RawPoolMin, d.RawPoolMax
	}
	if c.RawPoolMax == 0 {
		c.RawPoolMax = max(d.RawPoolMax, c.RawPoolMin)
	}
	if c.RawReserve == 0 {
		c.RawReserve = foreignReserve
	}
	if c.H264PoolMax == 0 {
		c.H264PoolMax = d.H264PoolMax
	}
	if c.H264SlabSize == 0 {
		c.H264SlabSize = d.H264SlabSize
	}
	if c.H264Replay == 0 {
		c.H264Replay = d.H264Replay // negative stays: the stream's "no replay"
	}
	if c.RetryMin == 0 {
		c.RetryMin = d.RetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = max(d.RetryMax, c.RetryMin)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RTSPTransport == "" {
		c.RTSPTransport = d.RTSPTransport
	}
	if c.RTSPTimeout == 0 {
		c.RTSPTimeout = d.RTSPTimeout
	}

	if _, err := surface.NV12(c.Width, c.Height, 0); err != nil && !native {
		return fmt.Errorf("media: config: Width %d, Height %d: %w", c.Width, c.Height, err)
	}
	if src.kind == SourceRTSP {
		switch {
		case c.Encoder != "":
			return fmt.Errorf("media: config: Encoder %q: an rtsp:// source is not encoded (the camera's H.264 goes to the h264 stream as it is); leave Encoder empty", c.Encoder)
		case c.RTSPTransport != TransportTCP && c.RTSPTransport != TransportUDP && c.RTSPTransport != TransportAuto:
			return fmt.Errorf("media: config: RTSPTransport %q: want %q, %q or %q", c.RTSPTransport, TransportTCP, TransportUDP, TransportAuto)
		case c.RTSPTimeout < 0:
			return fmt.Errorf("media: config: RTSPTimeout %v must be positive", c.RTSPTimeout)
		}
	}
	if strings.ContainsAny(c.Decoder, " !\t\n\"'") {
		return fmt.Errorf("media: config: Decoder %q must be an element name, \"\" or %q", c.Decoder, DecoderNone)
	}
	switch {
	case c.FPSNum <= 0 || c.FPSDen <= 0:
		return fmt.Errorf("media: config: frame rate FPSNum/FPSDen %d/%d must be positive", c.FPSNum, c.FPSDen)
	case c.Format != "NV12":
		return fmt.Errorf("media: config: Format %q is not supported (only NV12)", c.Format)
	case strings.ContainsAny(c.Encoder, " !\t\n\"'"):
		return fmt.Errorf("media: config: Encoder %q must be an element name, \"\" or %q", c.Encoder, EncoderNone)
	case c.BitrateKbps < 0 || c.BitrateKbps > 1_000_000:
		return fmt.Errorf("media: config: BitrateKbps %d must be in [1, 1000000]", c.BitrateKbps)
	case c.GOP < 1:
		return fmt.Errorf("media: config: GOP %d must be ≥ 1 frame", c.GOP)
	case c.RawPoolMin < 0 || c.RawPoolMax < 2 || c.RawPoolMin > c.RawPoolMax:
		return fmt.Errorf("media: config: RawPoolMin %d and RawPoolMax %d must satisfy 0 ≤ min ≤ max, max ≥ 2", c.RawPoolMin, c.RawPoolMax)
	case c.RawReserve < 1 || c.RawReserve >= c.RawPoolMax:
		return fmt.Errorf("media: config: RawReserve %d must be in [1, RawPoolMax %d)", c.RawReserve, c.RawPoolMax)
	case c.H264PoolMax < 1:
		return fmt.Errorf("media: config: H264PoolMax %d must be ≥ 1", c.H264PoolMax)
	case c.H264SlabSize < 4096 || c.H264SlabSize > 1<<30:
		return fmt.Errorf("media: config: H264SlabSize %d must be in [4096, 1 GiB]", c.H264SlabSize)
	case c.RetryMin < 0 || c.RetryMax < c.RetryMin:
		return fmt.Errorf("media: config: RetryMin %v and RetryMax %v must satisfy 0 ≤ min ≤ max", c.RetryMin, c.RetryMax)
	}
	return nil
}

// source is Config.Source parsed.
type source struct {
	kind   string   // SourceTest, SourceV4L2, SourceJetsonCSI, SourceLaunch or SourceRTSP
	device string   // v4l2
	sensor int      // jetson-csi
	desc   string   // launch
	camera *url.URL // rtsp, with its credentials: never logged (see redactURL)
	raw    string   // rtsp: the URL as given (for scrubber)
}

func parseSource(s string) (source, error) {
	switch {
	case s == SourceTest:
		return source{kind: SourceTest}, nil
	case strings.HasPrefix(s, SourceV4L2):
		dev := strings.TrimPrefix(s, SourceV4L2)
		if !strings.HasPrefix(dev, "/dev/") || strings.ContainsAny(dev, " !\"'") {
			return source{}, fmt.Errorf("media: config: Source %q: want v4l2:/dev/videoN", s)
		}
		return source{kind: SourceV4L2, device: dev}, nil
	case strings.HasPrefix(s, SourceJetsonCSI):
		n, err := strconv.Atoi(strings.TrimPrefix(s, SourceJetsonCSI))
		if err != nil || n < 0 || n > 255 {
			return source{}, fmt.Errorf("media: config: Source %q: want jetson-csi:N with a sensor id N in [0, 255]", s)
		}
		return source{kind: SourceJetsonCSI, sensor: n}, nil
	case strings.HasPrefix(s, SourceLaunch):
		d := strings.TrimSpace(strings.TrimPrefix(s, SourceLaunch))
		if d == "" {
			return source{}, fmt.Errorf("media: config: Source %q: empty launch description", s)
		}
		return source{kind: SourceLaunch, desc: d}, nil
	case strings.HasPrefix(strings.ToLower(s), SourceRTSP):
		u, err := parseCameraURL(s)
		if err != nil {
			return source{}, fmt.Errorf("media: config: Source %q: %w", redactSource(s), err)
		}
		return source{kind: SourceRTSP, camera: u, raw: s}, nil
	}
	return source{}, fmt.Errorf("media: config: unknown Source %q (want %q, v4l2:/dev/videoN, jetson-csi:N, launch:DESC or rtsp://host/path)", redactSource(s), SourceTest)
}

// elementPackages names the Debian package that provides each GStreamer
// element framehub uses (read-only).
var elementPackages = map[string]string{
	"appsink":          "gstreamer1.0-plugins-base",
	"appsrc":           "gstreamer1.0-plugins-base",
	"videoconvert":     "gstreamer1.0-plugins-base",
	"videoscale":       "gstreamer1.0-plugins-base",
	"videorate":        "gstreamer1.0-plugins-base",
	"videotestsrc":     "gstreamer1.0-plugins-base",
	"timeoverlay":      "gstreamer1.0-x",
	"clockoverlay":     "gstreamer1.0-x",
	"textoverlay":      "gstreamer1.0-x",
	"capsfilter":       "libgstreamer1.0-0",
	"identity":         "libgstreamer1.0-0",
	"queue":            "libgstreamer1.0-0",
	"fakesink":         "libgstreamer1.0-0",
	"filesrc":          "libgstreamer1.0-0",
	"v4l2src":          "gstreamer1.0-plugins-good",
	"v4l2h264enc":      "gstreamer1.0-plugins-good (and a V4L2 M2M encoder device)",
	"x264enc":          "gstreamer1.0-plugins-ugly",
	"openh264enc":      "gstreamer1.0-plugins-bad",
	"h264parse":        "gstreamer1.0-plugins-bad",
	"avdec_h264":       "gstreamer1.0-libav",
	"v4l2h264dec":      "gstreamer1.0-plugins-good (and a V4L2 M2M decoder device)",
	"v4l2slh264dec":    "gstreamer1.0-plugins-bad (and a V4L2 stateless decoder device)",
	"vah264dec":        "gstreamer1.0-plugins-bad (and a VA-API driver and device)",
	"vaapih264dec":     "gstreamer1.0-vaapi (and a VA-API driver and device)",
	"nvv4l2decoder":    "nvidia-l4t-gstreamer (NVIDIA JetPack)",
	"nvarguscamerasrc": "nvidia-l4t-gstreamer (NVIDIA JetPack)",
	"nvvidconv":        "nvidia-l4t-gstreamer (NVIDIA JetPack)",
	"nvv4l2h264enc":    "nvidia-l4t-gstreamer (NVIDIA JetPack)",
}

// ErrMissingElement is wrapped by every MissingElementError.
var ErrMissingElement = errors.New("GStreamer element not installed")

// MissingElementError reports a GStreamer element no installed plugin
// provides, with the package that does.
type MissingElementError struct {
	Element string // e.g. "x264enc"
	Package string // e.g. "gstreamer1.0-plugins-ugly"; "" when unknown
	Purpose string // what framehub needs it for
}

// Error names the element, what it is for, and the package to install.
func (e *MissingElementError) Error() string {
	msg := fmt.Sprintf("media: GStreamer element %q (%s) is not installed", e.Element, e.Purpose)
	if e.Package != "" {
		return msg + ": install the Debian package " + e.Package
	}
	return msg + ": no known package provides it; check the element name (gst-inspect-1.0 lists the installed ones)"
}

// Unwrap lets errors.Is(err, ErrMissingElement) match.
func (e *MissingElementError) Unwrap() error { return ErrMissingElement }

func missingElement(name, purpose string) error {
	return &MissingElementError{Element: name, Package: elementPackages[name], Purpose: purpose}
}
