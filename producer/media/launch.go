package media

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	gogst "github.com/go-gst/go-gst/gst"
	"golang.org/x/sys/unix"

	fhgst "github.com/framehub/framehub/internal/gst"
)

// Element names the pipeline looks up.
const (
	elemRawSink  = "fh_raw"
	elemEncSrc   = "fh_encsrc"
	elemEncoder  = "fh_enc"
	elemH264Sink = "fh_h264"
)

// encSrcQueue is how many raw frames may wait for the encoder in its appsrc
// (the oldest is dropped beyond it): with the frame being encoded, the
// encoder holds at most encSrcQueue+1 source buffers.
const encSrcQueue = 1

// v4l2Major is the major number of video4linux character devices.
const v4l2Major = 81

// elementExists reports whether an installed plugin provides the element.
func elementExists(name string) bool { return gogst.Find(name) != nil }

// checkSource checks what the source needs on this machine: its device,
// its elements. Errors name the device, or the element and its package.
func checkSource(src source) error {
	switch src.kind {
	case SourceTest:
		if !elementExists("videotestsrc") {
			return missingElement("videotestsrc", "test source")
		}
	case SourceV4L2:
		fi, err := os.Stat(src.device)
		if err != nil {
			return fmt.Errorf("media: source v4l2: video device %s: %w", src.device, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if fi.Mode()&os.ModeCharDevice == 0 || !ok || unix.Major(st.Rdev) != v4l2Major {
			return fmt.Errorf("media: source v4l2: %s is not a V4L2 device (mode %v; V4L2 devices are character devices of major %d)", src.device, fi.Mode(), v4l2Major)
		}
		if !elementExists("v4l2src") {
			return missingElement("v4l2src", "V4L2 camera source")
		}
	case SourceJetsonCSI:
		for _, e := range []string{"nvarguscamerasrc", "nvvidconv"} {
			if !elementExists(e) {
				return missingElement(e, fmt.Sprintf("Jetson CSI camera %d", src.sensor))
			}
		}
	case SourceRTSP:
		return nil // read in Go (camera.go); chooseDecoder checks the raw stream's elements
	}
	needs := []string{"appsink", "capsfilter"}
	if src.kind == SourceV4L2 || src.kind == SourceLaunch {
		needs = append(needs, "videoconvert", "videoscale")
	}
	for _, e := range needs {
		if !elementExists(e) {
			return missingElement(e, "raw branch")
		}
	}
	return nil
}

// chooseEncoder resolves Config.Encoder to an installed element ("" for
// none) and checks the rest of the encoded branch.
func chooseEncoder(want string) (string, error) {
	if want == EncoderNone {
		return "", nil
	}
	name := want
	if want == "" {
		name = ""
		for _, e := range autoEncoders {
			if elementExists(e) {
				name = e
				break
			}
		}
		if name == "" {
			return "", fmt.Errorf("media: no H.264 encoder installed (tried %s): %w; or set Encoder to %q",
				strings.Join(autoEncoders, ", "), missingElement("x264enc", "software H.264 encoder"), EncoderNone)
		}
	} else if !elementExists(name) {
		return "", missingElement(name, "H.264 encoder")
	}
	needs := []string{"appsrc", "h264parse", "appsink", "capsfilter"}
	if strings.HasPrefix(name, "nv") {
		needs = append(needs, "nvvidconv")
	} else {
		needs = append(needs, "videoconvert")
	}
	for _, e := range needs {
		if !elementExists(e) {
			return "", missingElement(e, "H.264 branch")
		}
	}
	return name, nil
}

// rawCaps is the caps the raw branch forces: system-memory NV12 at the
// configured size and rate; for an rtsp:// source the camera's rate, and
// its size unless one is configured.
func (c *Config) rawCaps(src source) string {
	if src.kind == SourceRTSP {
		if c.Width == 0 && c.Height == 0 {
			return "video/x-raw,format=" + c.Format
		}
		return fmt.Sprintf("video/x-raw,format=%s,width=%d,height=%d", c.Format, c.Width, c.Height)
	}
	return fmt.Sprintf("video/x-raw,format=%s,width=%d,height=%d,framerate=%d/%d", c.Format, c.Width, c.Height, c.FPSNum, c.FPSDen)
}

// description builds the gst-launch description of the whole pipeline: the
// raw branch ending in the appsink whose ALLOCATION query framehub answers,
// and, unless encoder is "", the encoded branch fed from an appsrc (see the
// package documentation for why there is no tee). An rtsp:// source's raw
// branch is the decoding pipeline (decoder.go) and has no encoded branch.
func description(c *Config, src source, encoder, decoder string, overlay bool, ioMode string) string {
	caps := c.rawCaps(src)
	var raw string
	switch src.kind {
	case SourceTest:
		// Scrolling bars: every frame differs, at a fifth of pattern=ball's
		// CPU (which renders each pixel of the ball anti-aliased).
		raw = fmt.Sprintf("videotestsrc name=fh_src is-live=true pattern=smpte horizontal-speed=4 ! %s ! ", caps)
		if overlay {
			raw += `timeoverlay name=fh_overlay halignment=left valignment=top font-desc="Sans 32" ! `
		}
	case SourceV4L2:
		raw = fmt.Sprintf("v4l2src name=fh_src device=%s io-mode=%s ! videoconvert ! videoscale ! ", src.device, ioMode)
	case SourceJetsonCSI:
		// nvvidconv (the VIC engine, not the CPU) writes system-memory NV12
		// into framehub's memfd pool. Adopting the NVMM buffers themselves
		// needs NvBufSurface (nvbufsurface.h) to reach their dma-buf fds:
		// the jetson build tag does that (internal/gst/fhgst_nvmm.c), not
		// yet run on hardware.
		raw = fmt.Sprintf("nvarguscamerasrc name=fh_src sensor-id=%d ! video/x-raw(memory:NVMM),format=NV12,width=%d,height=%d,framerate=%d/%d ! nvvidconv ! ",
			src.sensor, c.Width, c.Height, c.FPSNum, c.FPSDen)
		if adoptNVMM {
			// Built with the jetson tag: nvvidconv's output stays in NVMM
			// (pitch-linear NV12) and its DMA-BUFs are adopted.
			caps = strings.Replace(caps, "video/x-raw,", "video/x-raw(memory:NVMM),", 1)
		}
	case SourceLaunch:
		raw = src.desc + " ! videoconvert ! videoscale ! "
	case SourceRTSP:
		raw = decoderDescription(decoder)
		if strings.HasPrefix(decoder, "nv") && adoptNVMM {
			caps = strings.Replace(caps, "video/x-raw,", "video/x-raw(memory:NVMM),", 1)
		}
	}
	// The last capsfilter before the appsink is what makes every upstream
	// element produce plain system-memory NV12 (no overlay meta, no special
	// memory) that the allocation probe can serve; NVMM only when adopted.
	sink := fmt.Sprintf("capsfilter name=fh_caps caps=\"%s\" ! appsink name=%s sync=false async=false enable-last-sample=false max-buffers=1 drop=false", caps, elemRawSink)
	desc := raw + sink
	if encoder == "" {
		return desc
	}
	convert := "videoconvert"
	if strings.HasPrefix(encoder, "nv") {
		convert = "nvvidconv ! video/x-raw(memory:NVMM),format=NV12"
	}
	return desc + fmt.Sprintf("  appsrc name=%s is-live=true format=time do-timestamp=false block=false max-buffers=%d max-bytes=0 max-time=0 leaky-type=downstream"+
		" ! %s ! %s name=%s%s ! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au"+
		" ! appsink name=%s sync=false async=false enable-last-sample=false max-buffers=4 drop=false",
		elemEncSrc, encSrcQueue, convert, encoder, elemEncoder, encoderProps(encoder, c), elemH264Sink)
}

// encoderProps are the properties that make each known encoder low-latency
// with the configured bitrate and GOP and no B-frames.
func encoderProps(encoder string, c *Config) string {
	switch encoder {
	case "x264enc":
		return fmt.Sprintf(" tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max=%d bitrate=%d byte-stream=true", c.GOP, c.BitrateKbps)
	case "openh264enc":
		return fmt.Sprintf(" bitrate=%d gop-size=%d complexity=low rate-control=bitrate usage-type=camera", c.BitrateKbps*1000, c.GOP)
	case "v4l2h264enc":
		return fmt.Sprintf(` extra-controls="controls,video_bitrate=%d,h264_i_frame_period=%d"`, c.BitrateKbps*1000, c.GOP)
	case "nvv4l2h264enc":
		return fmt.Sprintf(" bitrate=%d iframeinterval=%d idrinterval=%d insert-sps-pps=true maxperf-enable=true", c.BitrateKbps*1000, c.GOP, c.GOP)
	}
	return ""
}

// parseCheck parses desc once, without starting it, to report missing
// elements and bad properties at start-up rather than at the first run.
func parseCheck(desc string) error {
	pipe, err := fhgst.ParseLaunch(desc)
	if err != nil {
		var perr *fhgst.ParseError
		if errors.As(err, &perr) && len(perr.Missing) > 0 {
			return fmt.Errorf("media: pipeline %q: %w", desc, missingElement(perr.Missing[0], "pipeline element"))
		}
		return fmt.Errorf("media: pipeline %q: %w", desc, err)
	}
	pipe.Unref()
	return nil
}
