package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxGstProcs bounds the gst-launch-1.0 children kept running: one per
// (size, quality) in use, least recently used stopped first.
const maxGstProcs = 4

// gstTimeout bounds one encode when the caller's context has no deadline.
const gstTimeout = 10 * time.Second

// maxJPEG bounds a JPEG read back from a child, so a confused child cannot
// make this process buffer without end.
const maxJPEG = 64 << 20

// GstEncoder encodes with GStreamer's jpegenc (libjpeg-turbo, SIMD) without
// linking GStreamer: it keeps a gst-launch-1.0 child per output size and
// quality running,
//
//	fdsrc fd=3 ! rawvideoparse format=nv12 ... ! jpegenc quality=Q ! fdsink fd=4
//
// writes each frame into the child's input pipe as packed NV12 and reads the
// JPEG back from its output pipe, finding its end by parsing the JPEG
// markers (jpegenc emits exactly one image per frame). The binary stays
// cgo-free. The frame is read only while it is written into the pipe (a copy
// the kernel makes), so the lease ends before the JPEG is encoded.
//
// On a Jetson, nvjpegenc would encode from NVMM memory on the hardware
// encoder; it needs NVMM input (nvvidconv) and is not available elsewhere,
// so it is not used here.
type GstEncoder struct {
	bin string
	log *slog.Logger

	mu      sync.Mutex
	procs   []*gstProc // most recently used first
	scratch []byte
	closed  bool
}

// NewGstEncoder finds bin (gst-launch-1.0 when empty) on $PATH. Children are
// started on first use; Warm starts one ahead of time.
func NewGstEncoder(bin string, log *slog.Logger) (*GstEncoder, error) {
	if bin == "" {
		bin = "gst-launch-1.0"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("snapshot: gst encoder: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &GstEncoder{bin: path, log: log}, nil
}

// Name implements Encoder.
func (e *GstEncoder) Name() string { return EncoderGst }

// Warm starts the child for width×height at quality and encodes one grey
// frame with it, so that the first snapshot does not pay GStreamer's start
// (plugin loading, ~100 ms) and a broken installation shows at once.
func (e *GstEncoder) Warm(ctx context.Context, width, height, quality int) error {
	grey := make([]byte, width*height*3/2)
	for i := range grey {
		grey[i] = 128
	}
	src := NV12{Width: width, Height: height, Y: grey[:width*height], YStride: width, UV: grey[width*height:], UVStride: width}
	_, err := e.Encode(ctx, src, width, height, quality, func() {})
	return err
}

// Encode implements Encoder.
func (e *GstEncoder) Encode(ctx context.Context, src NV12, width, height, quality int, srcDone func()) ([]byte, error) {
	done := false
	release := func() {
		if !done {
			done = true
			srcDone()
		}
	}
	defer release()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errors.New("snapshot: gst encoder closed")
	}
	key := gstKey{w: width, h: height, q: quality}
	p, err := e.procLocked(key)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(gstTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	p.setDeadline(deadline)
	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cancelled)
		p.setDeadline(time.Now())
	})
	defer func() {
		if !stop() {
			<-cancelled // else it could cut the next encode's deadline short
		}
	}()

	// Write straight from the mapping when it is already packed NV12 at
	// the output size; else pack (and scale) into our own buffer first,
	// which ends the frame's use before the pipe write.
	var werr error
	if width == src.Width && height == src.Height && src.YStride == width && src.UVStride == width {
		if _, werr = p.in.Write(src.Y[:width*height]); werr == nil {
			_, werr = p.in.Write(src.UV[:width*height/2])
		}
		release()
	} else {
		if n := width * height * 3 / 2; cap(e.scratch) < n {
			e.scratch = make([]byte, n)
		}
		packed := src.packedNV12(e.scratch, width, height)
		release()
		_, werr = p.in.Write(packed)
	}
	var out []byte
	if werr == nil {
		out, werr = readJPEG(p.rd, maxJPEG)
	}
	if werr != nil {
		diag := p.stderrTail()
		e.dropLocked(p) // a child out of step with its pipes cannot be reused
		return nil, fmt.Errorf("snapshot: gst jpegenc %dx%d quality %d: %w%s", width, height, quality, werr, diag)
	}
	return out, nil
}

// Close stops every child. It is idempotent.
func (e *GstEncoder) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for _, p := range e.procs {
		p.stop()
	}
	e.procs = nil
	return nil
}

type gstKey struct{ w, h, q int }

// gstProc is one gst-launch-1.0 child. It owns its two pipe ends.
type gstProc struct {
	key    gstKey
	cmd    *exec.Cmd
	in     *os.File // write end of the child's input (its fd 3)
	out    *os.File // read end of the child's output (its fd 4)
	rd     *bufio.Reader
	stderr *tailBuffer
	exited chan struct{}
}

// procLocked returns the running child for key, starting it if needed.
func (e *GstEncoder) procLocked(key gstKey) (*gstProc, error) {
	for i, p := range e.procs {
		if p.key != key {
			continue
		}
		select {
		case <-p.exited:
			e.log.Warn("gst encoder child had exited; restarting it", "size", fmt.Sprintf("%dx%d", key.w, key.h), "stderr", p.stderr.String())
			p.stop()
			e.procs = append(e.procs[:i], e.procs[i+1:]...)
		default:
			copy(e.procs[1:i+1], e.procs[:i])
			e.procs[0] = p
			return p, nil
		}
		break
	}
	p, err := startGst(e.bin, key)
	if err != nil {
		return nil, err
	}
	e.log.Debug("gst encoder child started", "pid", p.cmd.Process.Pid, "size", fmt.Sprintf("%dx%d", key.w, key.h), "quality", key.q)
	e.procs = append([]*gstProc{p}, e.procs...)
	if len(e.procs) > maxGstProcs {
		e.procs[maxGstProcs].stop()
		e.procs = e.procs[:maxGstProcs]
	}
	return p, nil
}

func (e *GstEncoder) dropLocked(p *gstProc) {
	p.stop()
	for i, q := range e.procs {
		if q == p {
			e.procs = append(e.procs[:i], e.procs[i+1:]...)
			return
		}
	}
}

func startGst(bin string, k gstKey) (*gstProc, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("snapshot: gst encoder: input pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("snapshot: gst encoder: output pipe: %w", err)
	}
	// A 1 MiB input pipe takes a 1080p frame in 3 writes instead of 48
	// (the default is 64 KiB); failing to get it only costs wake-ups.
	_, _ = unix.FcntlInt(inW.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	args := []string{"-q",
		"fdsrc", "fd=3", "blocksize=1048576", "!",
		"rawvideoparse", "format=nv12", fmt.Sprintf("width=%d", k.w), fmt.Sprintf("height=%d", k.h), "framerate=0/1", "!",
		"jpegenc", fmt.Sprintf("quality=%d", k.q), "!",
		"fdsink", "fd=4", "sync=false"}
	p := &gstProc{key: k, in: inW, out: outR, rd: bufio.NewReaderSize(outR, 256<<10), stderr: &tailBuffer{max: 4096}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.ExtraFiles = []*os.File{inR, outW}
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	// The child must not outlive this process (a crash would leave it
	// waiting on its pipe forever).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = p.cmd.Start()
	// The child has its copies of these ends (or none, on error).
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("snapshot: gst encoder: start %s: %w", bin, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *gstProc) setDeadline(t time.Time) {
	_ = p.in.SetWriteDeadline(t)
	_ = p.out.SetReadDeadline(t)
}

// stop kills the child, waits for it and closes the pipes.
func (p *gstProc) stop() {
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.in.Close()
	p.out.Close()
}

func (p *gstProc) stderrTail() string {
	select {
	case <-p.exited:
		return fmt.Sprintf(" (child exited: %v; its output: %q)", p.cmd.ProcessState, strings.TrimSpace(p.stderr.String()))
	default:
	}
	if s := strings.TrimSpace(p.stderr.String()); s != "" {
		return fmt.Sprintf(" (child output: %q)", s)
	}
	return ""
}

// readJPEG reads one JPEG image (SOI to EOI) from r. It follows the marker
// segments by their lengths and scans entropy-coded data for the next
// marker (0xFF followed by neither 0x00 stuffing nor a restart marker), so
// 0xFFD9 bytes inside segments cannot end the image early.
func readJPEG(r *bufio.Reader, limit int) ([]byte, error) {
	var out bytes.Buffer
	get := func() (byte, error) {
		if out.Len() >= limit {
			return 0, fmt.Errorf("JPEG larger than %d bytes", limit)
		}
		c, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("output ended after %d bytes of JPEG: %w", out.Len(), io.ErrUnexpectedEOF)
			}
			return 0, err
		}
		out.WriteByte(c)
		return c, nil
	}
	if a, err := get(); err != nil {
		return nil, err
	} else if b, err := get(); err != nil {
		return nil, err
	} else if a != 0xFF || b != 0xD8 {
		return nil, fmt.Errorf("output does not start with a JPEG SOI marker (got %#x %#x)", a, b)
	}
	var marker byte // a marker found while scanning entropy-coded data
	for {
		m := marker
		marker = 0
		if m == 0 {
			c, err := get()
			if err != nil {
				return nil, err
			}
			if c != 0xFF {
				return nil, fmt.Errorf("expected a JPEG marker at byte %d, got %#x", out.Len()-1, c)
			}
			for c == 0xFF { // fill bytes
				if c, err = get(); err != nil {
					return nil, err
				}
			}
			m = c
		}
		switch {
		case m == 0xD9: // EOI
			return out.Bytes(), nil
		case m == 0x01 || (m >= 0xD0 && m <= 0xD7): // no payload
			continue
		}
		hi, err := get()
		if err != nil {
			return nil, err
		}
		lo, err := get()
		if err != nil {
			return nil, err
		}
		n := int(hi)<<8 | int(lo)
		if n < 2 {
			return nil, fmt.Errorf("JPEG segment %#x with length %d", m, n)
		}
		for range n - 2 {
			if _, err := get(); err != nil {
				return nil, err
			}
		}
		if m != 0xDA { // not SOS: the next marker follows
			continue
		}
		for marker == 0 { // entropy-coded data up to the next marker
			chunk, err := r.ReadSlice(0xFF) // bulk: most of the image's bytes
			out.Write(chunk)
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("output ended after %d bytes of JPEG: %w", out.Len(), io.ErrUnexpectedEOF)
			}
			if err != nil {
				return nil, err
			}
			if out.Len() >= limit {
				return nil, fmt.Errorf("JPEG larger than %d bytes", limit)
			}
			c := byte(0xFF)
			for c == 0xFF {
				if c, err = get(); err != nil {
					return nil, err
				}
			}
			if c != 0x00 && (c < 0xD0 || c > 0xD7) {
				marker = c
			}
		}
	}
}

// tailBuffer keeps the last max bytes written to it (a child's diagnostics).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
