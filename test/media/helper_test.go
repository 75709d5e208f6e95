package media_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/sdk"
)

// The consumer process of these tests. The test binary re-executes itself
// as the helper "consumer", which TestMain runs (helperMain); the
// parameters travel in FHM_* variables, the results as JSON lines on stdout
// (see report). The helper exits when its work is done or its stdin closes.

// report is one JSON line from a helper.
type report struct {
	Event string `json:"event"` // ready, progress, done

	Frames    int `json:"frames"`    // frames received
	EOS       int `json:"eos"`       // EOS messages the SDK reported
	Discont   int `json:"discont"`   // frames flagged discontinuous
	Keyframes int `json:"keyframes"` // keyframes received (h264)
	SinceEOS  int `json:"since_eos"` // frames received since the last EOS

	// pixels mode
	Kinds     map[string]int `json:"kinds,omitempty"`
	Planes    []sdk.Plane    `json:"planes,omitempty"` // of the first frame
	BadLayout int            `json:"bad_layout"`       // frames whose planes differ from surface.NV12's
	BadPixels int            `json:"bad_pixels"`       // frames with a sample out of tolerance
	YMin      int            `json:"y_min"`
	YMax      int            `json:"y_max"`
	UMin      int            `json:"u_min"`
	UMax      int            `json:"u_max"`
	VMin      int            `json:"v_min"`
	VMax      int            `json:"v_max"`
	WriteMap  string         `json:"write_map"` // error of mmap(PROT_WRITE) of a received fd ("" = it worked!)

	// hold mode
	Checked    int `json:"checked"`    // frames checksummed at receipt and before release
	Mismatches int `json:"mismatches"` // frames whose pixels changed while held
	Distinct   int `json:"distinct"`   // distinct checksums seen

	// h264 and keyframe modes
	Written    int   `json:"written"`                // access units written
	Headers    int   `json:"headers"`                // access units flagged with SPS/PPS
	FramesToKF []int `json:"frames_to_kf,omitempty"` // per RequestKeyframe: frames until the keyframe, itself included

	Err string `json:"err,omitempty"`
}

type emitter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (e *emitter) emit(r report) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_ = e.enc.Encode(r)
}

// eosCounter is a slog handler counting the SDK's "end of stream" records:
// the SDK tells applications about EOS only through them and the next
// frame's Discont flag.
type eosCounter struct{ n atomic.Int64 }

func (h *eosCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *eosCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "producer reports end of stream" {
		h.n.Add(1)
	}
	return nil
}
func (h *eosCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *eosCounter) WithGroup(string) slog.Handler      { return h }

func helperMain() int {
	out := &emitter{enc: json.NewEncoder(os.Stdout)}
	atoi := func(k string) int { n, _ := strconv.Atoi(os.Getenv(k)); return n }
	mode := os.Getenv("FHM_MODE")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // the parent closes stdin to stop us
		cancel()
	}()
	eos := &eosCounter{}
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
	c, err := sdk.Dial(dctx, os.Getenv("FHM_SOCKET"), sdk.Options{
		Stream: os.Getenv("FHM_STREAM"), Name: "media-" + mode, MaxInFlight: atoi("FHM_BUDGET"),
		MaxHold: 10 * time.Second, Logger: slog.New(eos),
	})
	dcancel()
	if err != nil {
		out.emit(report{Event: "done", Err: "dial: " + err.Error()})
		return 1
	}
	defer c.Close()
	out.emit(report{Event: "ready"})
	h := &helper{c: c, out: out, eos: eos, frames: atoi("FHM_FRAMES")}
	switch mode {
	case "pixels":
		err = h.pixels(ctx, atoi("FHM_WIDTH"), atoi("FHM_HEIGHT"), [3]int{atoi("FHM_Y"), atoi("FHM_U"), atoi("FHM_V")})
	case "hold":
		d, _ := time.ParseDuration(os.Getenv("FHM_HOLD"))
		err = h.hold(ctx, d)
	case "h264":
		err = h.h264(ctx, os.Getenv("FHM_OUT"))
	case "keyframe":
		err = h.keyframes(ctx, atoi("FHM_ROUNDS"))
	case "count":
		err = h.count(ctx)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	h.r.Event, h.r.EOS = "done", int(eos.n.Load())
	if err != nil && !errors.Is(err, context.Canceled) {
		h.r.Err = err.Error()
	}
	out.emit(h.r)
	return 0
}

type helper struct {
	c      *sdk.Client
	out    *emitter
	eos    *eosCounter
	frames int
	r      report
}

// next receives a frame and counts it.
func (h *helper) next(ctx context.Context) (*sdk.Frame, error) {
	f, err := h.c.Next(ctx)
	if err != nil {
		return nil, err
	}
	h.r.Frames++
	h.r.SinceEOS++
	if f.Discont() {
		h.r.Discont++
	}
	if f.Keyframe() {
		h.r.Keyframes++
	}
	return f, nil
}

// pixels checks layout, read-only sharing and the colour of a solid-colour
// source in every frame.
func (h *helper) pixels(ctx context.Context, w, ht int, want [3]int) error {
	layout, err := surface.NV12(w, ht, 0)
	if err != nil {
		return err
	}
	const tol = 3
	h.r.Kinds = map[string]int{}
	h.r.YMin, h.r.UMin, h.r.VMin = 255, 255, 255
	for h.r.Frames < h.frames {
		f, err := h.next(ctx)
		if err != nil {
			return err
		}
		h.r.Kinds[f.Kind().String()]++
		if h.r.Planes == nil {
			h.r.Planes = f.Planes()
			if _, err := unix.Mmap(f.FDs()[0], 0, int(layout.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
				h.r.WriteMap = err.Error()
			}
		}
		if !slices.Equal(f.Planes(), sdkPlanes(layout.Planes)) {
			h.r.BadLayout++
		}
		y, err1 := f.Plane(0)
		uv, err2 := f.Plane(1)
		if err := errors.Join(err1, err2); err != nil {
			f.Release()
			return err
		}
		ys, uvs := f.Planes()[0].Stride, f.Planes()[1].Stride
		bad := false
		note := func(v, want int, lo, hi *int) {
			*lo, *hi = min(*lo, v), max(*hi, v)
			if v < want-tol || v > want+tol {
				bad = true
			}
		}
		for row := 0; row < ht; row += 7 {
			for x := 0; x < w; x += 5 {
				note(int(y[row*ys+x]), want[0], &h.r.YMin, &h.r.YMax)
			}
		}
		for row := 0; row < ht/2; row += 5 {
			for x := 0; x+1 < w; x += 6 {
				note(int(uv[row*uvs+x]), want[1], &h.r.UMin, &h.r.UMax)
				note(int(uv[row*uvs+x+1]), want[2], &h.r.VMin, &h.r.VMax)
			}
		}
		if bad {
			h.r.BadPixels++
		}
		f.Release()
	}
	return nil
}

// hold keeps up to its budget of frames, each for d, and checks that the
// Y plane it holds never changes: a surface handed out again while leased
// would (invariant 1, seed 000).
func (h *helper) hold(ctx context.Context, d time.Duration) error {
	type held struct {
		f     *sdk.Frame
		sum   uint32
		until time.Time
	}
	sum := func(f *sdk.Frame) (uint32, error) {
		y, err := f.Plane(0)
		if err != nil {
			return 0, err
		}
		return crc32.ChecksumIEEE(y), nil
	}
	frames, errc := h.c.Frames(ctx)
	var (
		queue    []held
		distinct = map[uint32]bool{}
	)
	release := func(hf held) error {
		s, err := sum(hf.f)
		if err != nil {
			return err
		}
		h.r.Checked++
		if s != hf.sum {
			h.r.Mismatches++
		}
		hf.f.Release()
		return nil
	}
	for h.r.Frames < h.frames || len(queue) > 0 {
		in := frames
		if h.r.Frames >= h.frames {
			in = nil // enough: only wait for the held ones
		}
		var due <-chan time.Time
		if len(queue) > 0 {
			due = time.After(time.Until(queue[0].until))
		}
		select {
		case f, ok := <-in:
			if !ok {
				return <-errc
			}
			h.r.Frames++
			s, err := sum(f)
			if err != nil {
				return err
			}
			distinct[s] = true
			queue = append(queue, held{f: f, sum: s, until: time.Now().Add(d)})
		case <-due:
			for len(queue) > 0 && !time.Now().Before(queue[0].until) {
				if err := release(queue[0]); err != nil {
					return err
				}
				queue = queue[1:]
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h.r.Distinct = len(distinct)
	return nil
}

// h264 writes the stream's access units from the first keyframe on, asking
// for one so as not to wait a whole GOP.
func (h *helper) h264(ctx context.Context, path string) error {
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	defer file.Close()
	if err := h.c.RequestKeyframe(); err != nil {
		return err
	}
	for h.r.Written < h.frames {
		f, err := h.next(ctx)
		if err != nil {
			return err
		}
		if h.r.Written == 0 && !f.Keyframe() {
			f.Release()
			continue
		}
		if f.Header() {
			h.r.Headers++
		}
		data, err := f.Data()
		if err == nil {
			_, err = file.Write(data)
		}
		f.Release()
		if err != nil {
			return err
		}
		h.r.Written++
	}
	return file.Sync()
}

// keyframes waits for a keyframe, lets 10 frames pass, asks for a keyframe
// and counts the frames until it comes, rounds times.
func (h *helper) keyframes(ctx context.Context, rounds int) error {
	if err := h.c.RequestKeyframe(); err != nil {
		return err
	}
	waitKey := func() (int, error) {
		for n := 1; ; n++ {
			f, err := h.next(ctx)
			if err != nil {
				return n, err
			}
			key := f.Keyframe()
			f.Release()
			if key {
				return n, nil
			}
		}
	}
	if _, err := waitKey(); err != nil {
		return err
	}
	for i := 0; i < rounds; i++ {
		for j := 0; j < 10; j++ {
			f, err := h.next(ctx)
			if err != nil {
				return err
			}
			f.Release()
		}
		if err := h.c.RequestKeyframe(); err != nil {
			return err
		}
		n, err := waitKey()
		if err != nil {
			return err
		}
		h.r.FramesToKF = append(h.r.FramesToKF, n)
	}
	return nil
}

// count counts frames and EOS until stopped, reporting progress every 10
// frames.
func (h *helper) count(ctx context.Context) error {
	last := int64(0)
	for {
		f, err := h.next(ctx)
		if err != nil {
			return err
		}
		f.Release()
		if n := h.eos.n.Load(); n != last {
			last = n
			h.r.SinceEOS = 1 // this frame is the first after the EOS
		}
		if h.r.Frames%10 == 0 {
			h.r.EOS = int(last)
			h.r.Event = "progress"
			h.out.emit(h.r)
		}
	}
}

// sdkPlanes is the producer's plane layout as the SDK gives it to a
// consumer.
func sdkPlanes(ps []ipc.Plane) []sdk.Plane {
	out := make([]sdk.Plane, len(ps))
	for i, p := range ps {
		out[i] = sdk.Plane{Offset: int(p.Offset), Stride: int(p.Stride), Size: int(p.Size), FD: int(p.FD)}
	}
	return out
}
