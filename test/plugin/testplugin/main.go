// Command testplugin is the misbehaving plugin of the plugin tests
// (test/plugin). Its "mode" param selects the behaviour:
//
//   - count (default): verify every frame's stamp and release it;
//   - panic: like count, then panic after "after" frames (default 5);
//   - leak: never release a frame (the producer evicts it at max_hold);
//   - flood: like count, while another goroutine sends RequestKeyframe
//     packets as fast as the socket takes them;
//   - probe: try every way of writing to a received surface, record how
//     each failed (errno metrics), then behave like count.
//
// Its metrics (frames, mismatches, the probe's errnos) reach the test only
// through the host's health RPC.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/sdk"
	"github.com/framehub/framehub/sdk/plugin"
	"github.com/framehub/framehub/sdk/stamp"
)

func main() {
	plugin.Serve(&testConsumer{})
}

type testConsumer struct {
	log   *slog.Logger
	mode  string
	after uint64

	frames, mismatches, floodSent atomic.Uint64

	mu    sync.Mutex
	probe map[string]float64
}

func (tc *testConsumer) Configure(cfg plugin.Config) error {
	tc.log, tc.mode, tc.after = cfg.Logger, cfg.Params["mode"], 5
	if tc.mode == "" {
		tc.mode = "count"
	}
	switch tc.mode {
	case "count", "panic", "leak", "flood", "probe":
	default:
		return fmt.Errorf("unknown mode %q", tc.mode)
	}
	if v, ok := cfg.Params["after"]; ok {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("param after=%q: %w", v, err)
		}
		tc.after = n
	}
	return nil
}

func (tc *testConsumer) Run(ctx context.Context, c *sdk.Client) error {
	if tc.mode == "flood" {
		var wg sync.WaitGroup
		fctx, cancel := context.WithCancel(ctx)
		defer func() { cancel(); wg.Wait() }()
		wg.Go(func() {
			for fctx.Err() == nil {
				if c.RequestKeyframe() == nil {
					tc.floodSent.Add(1)
				}
			}
		})
	}
	return c.Consume(ctx, func(f *sdk.Frame) error {
		n := tc.frames.Add(1)
		if tc.mode == "leak" {
			return nil // never released
		}
		if tc.mode == "probe" && n == 1 {
			tc.runProbe(c, f)
		}
		if err := verify(c, f); err != nil {
			tc.mismatches.Add(1)
			tc.log.Error("stamp mismatch", "seq", f.Seq(), "err", err)
		}
		f.Release()
		if tc.mode == "panic" && n >= tc.after {
			panic(fmt.Sprintf("testplugin: panicking on purpose after %d frames", n))
		}
		return nil
	})
}

func verify(c *sdk.Client, f *sdk.Frame) error {
	y, err := f.Plane(0)
	if err != nil {
		return err
	}
	_, err = stamp.Verify(y, f.Planes()[0].Stride, c.Caps().Width, f.Seq())
	return err
}

func (tc *testConsumer) Metrics() map[string]float64 {
	mark, _ := strconv.ParseFloat(os.Getenv("TESTPLUGIN_MARK"), 64) // shows which environment the plugin got
	m := map[string]float64{
		"frames": float64(tc.frames.Load()), "mismatches": float64(tc.mismatches.Load()),
		"flood_sent": float64(tc.floodSent.Load()), "env_mark": mark,
	}
	tc.mu.Lock()
	for k, v := range tc.probe {
		m[k] = v
	}
	tc.mu.Unlock()
	return m
}

// runProbe tries to change the frame's surface in every way a plugin could,
// and records the errno of each attempt (0: it worked, which must never
// happen) and whether the stamp is still intact afterwards.
func (tc *testConsumer) runProbe(c *sdk.Client, f *sdk.Frame) {
	errno := func(err error) float64 {
		var e unix.Errno
		if errors.As(err, &e) {
			return float64(e)
		}
		if err != nil {
			return -1 // failed, not with an errno
		}
		return 0
	}
	res := map[string]float64{}
	fd := f.FDs()[0]
	var st unix.Stat_t
	_ = unix.Fstat(fd, &st)
	size := int(st.Size)
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
		res["probe_acc_mode"] = float64(fl & unix.O_ACCMODE)
	}
	m, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	res["probe_mmap_rw_errno"] = errno(err)
	if err == nil {
		_ = unix.Munmap(m)
	}
	y, err := f.Plane(0)
	if err == nil {
		res["probe_mprotect_errno"] = errno(unix.Mprotect(y[:os.Getpagesize()], unix.PROT_READ|unix.PROT_WRITE))
		res["probe_direct_write_faulted"] = boolf(writeFaults(y))
	}
	res["probe_ftruncate_errno"] = errno(unix.Ftruncate(fd, int64(size)*2))
	_, err = unix.Pwrite(fd, []byte("scribble"), 0)
	res["probe_pwrite_errno"] = errno(err)
	rw, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err == nil {
		m, err := unix.Mmap(rw, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		res["probe_reopen_mmap_rw_errno"] = errno(err)
		if err == nil {
			_ = unix.Munmap(m)
		}
		_, err = unix.Pwrite(rw, []byte("scribble"), 0)
		res["probe_reopen_pwrite_errno"] = errno(err)
		_ = unix.Close(rw)
	} else {
		res["probe_reopen_mmap_rw_errno"], res["probe_reopen_pwrite_errno"] = errno(err), errno(err)
	}
	res["probe_stamp_intact"] = boolf(verify(c, f) == nil)
	res["probe_done"] = 1
	tc.mu.Lock()
	tc.probe = res
	tc.mu.Unlock()
	tc.log.Info("probe done", "results", res)
}

// writeFaults writes into the read-only mapping y and reports whether the
// write faulted (as it must: the SDK maps surfaces PROT_READ).
func writeFaults(y []byte) (faulted bool) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if recover() != nil {
			faulted = true
		}
	}()
	y[len(y)/2] ^= 0xFF
	return false
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
