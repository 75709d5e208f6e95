package cuda_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/cuda"
	"github.com/framehub/framehub/internal/cuda/standin"
	"github.com/framehub/framehub/internal/sysinfo"
)

const helperEnv = "FRAMEHUB_CUDA_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "import":
		if err := importHelper(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(2)
}

func open(t *testing.T) (*cuda.Driver, *cuda.Context) {
	t.Helper()
	ctx := standin.Context(t)
	return ctx.Driver(), ctx
}

// TestLoadMissing: a machine without the driver gets an error naming the
// library, not a crash.
func TestLoadMissing(t *testing.T) {
	_, err := cuda.Load(cuda.Options{Library: "/nonexistent/libcuda.so.1"})
	require.ErrorContains(t, err, "/nonexistent/libcuda.so.1")
	require.ErrorContains(t, err, "NVIDIA driver")
}

// TestDevices: the stand-in (which Load accepted: it exports every entry
// point) describes its one device, found again by its UUID.
func TestDevices(t *testing.T) {
	d, _ := open(t)
	v, err := d.Version()
	require.NoError(t, err)
	require.Equal(t, 13000, v)
	devs, err := d.Devices()
	require.NoError(t, err)
	require.Len(t, devs, 1)
	dev := devs[0]
	require.Contains(t, dev.Name, "stand-in")
	require.True(t, dev.VMM && dev.PosixFD && dev.DMABuf)
	require.Equal(t, 9, dev.Major)
	u, err := cuda.ParseUUID([]byte(dev.UUID.String()))
	require.NoError(t, err)
	require.Equal(t, dev.UUID, u)
	got, err := d.DeviceByUUID(dev.UUID)
	require.NoError(t, err)
	require.Equal(t, dev, got)

	other := dev.UUID
	other[0] ^= 0xff
	_, err = d.DeviceByUUID(other)
	require.ErrorContains(t, err, other.String())
	require.ErrorContains(t, err, dev.UUID.String())
	require.ErrorContains(t, err, "CUDA_VISIBLE_DEVICES")
}

func TestParseUUID(t *testing.T) {
	raw := []byte("0123456789abcdef")
	u, err := cuda.ParseUUID(raw)
	require.NoError(t, err)
	require.Equal(t, "GPU-30313233-3435-3637-3839-616263646566", u.String())
	for _, s := range []string{"GPU-30313233-3435-3637-3839-616263646566", "30313233343536373839616263646566"} {
		v, err := cuda.ParseUUID([]byte(s))
		require.NoError(t, err)
		require.Equal(t, u, v)
	}
	_, err = cuda.ParseUUID([]byte("GPU-1234"))
	require.ErrorContains(t, err, "32 hex digits")
}

// TestAllocationRoundTrip: create, export, import, map read-write and
// read-only, copy in and out; every fd and mapping is gone afterwards.
func TestAllocationRoundTrip(t *testing.T) {
	_, ctx := open(t)
	fds := sysinfo.FDCount(os.Getpid())
	g, err := ctx.Granularity()
	require.NoError(t, err)
	require.Equal(t, 2<<20, g)

	_, err = ctx.Create(g + 4096)
	require.True(t, cuda.IsResult(err, cuda.ErrInvalidValue), "size off the granularity: %v", err)
	require.ErrorContains(t, err, "cuMemCreate")

	h, err := ctx.Create(g)
	require.NoError(t, err)
	fd, err := ctx.Export(h)
	require.NoError(t, err)
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	require.NoError(t, err)
	require.NotZero(t, flags&unix.FD_CLOEXEC, "exported fd must be close-on-exec")

	rw, err := ctx.Map(h, g, cuda.ReadWrite)
	require.NoError(t, err)
	want := bytes.Repeat([]byte("framehub"), 512)
	require.NoError(t, ctx.CopyToDevice(rw+4096, want))

	h2, err := ctx.Import(fd)
	require.NoError(t, err)
	require.NoError(t, unix.Close(fd), "the importer may close its fd at once")
	ro, err := ctx.Map(h2, g, cuda.ReadOnly)
	require.NoError(t, err)
	require.NotEqual(t, rw, ro)
	got := make([]byte, len(want))
	require.NoError(t, ctx.CopyToHost(got, ro+4096))
	require.Equal(t, want, got)

	// The exporter lets go first: the importer's mapping stays valid.
	require.NoError(t, ctx.Unmap(rw, g))
	require.NoError(t, ctx.Release(h))
	clear(got)
	require.NoError(t, ctx.CopyToHost(got, ro+4096))
	require.Equal(t, want, got)
	require.NoError(t, ctx.Unmap(ro, g))
	require.NoError(t, ctx.Release(h2))

	require.Error(t, ctx.Release(h2), "double release")
	_, err = ctx.Import(0)
	require.True(t, cuda.IsResult(err, cuda.ErrInvalidValue), "stdin is no allocation: %v", err)
	require.Equal(t, fds, sysinfo.FDCount(os.Getpid()))
}

// TestAnyGoroutine: the context is made current on whatever thread a call
// runs on; the stand-in, like CUDA, refuses calls on a thread without a
// current context.
func TestAnyGoroutine(t *testing.T) {
	_, ctx := open(t)
	g, err := ctx.Granularity()
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 16*20)
	for range 16 {
		wg.Go(func() {
			for range 20 {
				h, err := ctx.Create(g)
				if err != nil {
					errs <- err
					return
				}
				p, err := ctx.Map(h, g, cuda.ReadWrite)
				if err == nil {
					err = ctx.Unmap(p, g)
				}
				errs <- errors.Join(err, ctx.Release(h))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// TestCrossProcess: another process imports the exported fd (passed as it
// would be over SCM_RIGHTS, here through exec), maps it read-only and reads
// what this one wrote.
func TestCrossProcess(t *testing.T) {
	_, ctx := open(t)
	g, err := ctx.Granularity()
	require.NoError(t, err)
	h, err := ctx.Create(2 * g)
	require.NoError(t, err)
	defer ctx.Release(h)
	p, err := ctx.Map(h, 2*g, cuda.ReadWrite)
	require.NoError(t, err)
	defer ctx.Unmap(p, 2*g)
	require.NoError(t, ctx.CopyToDevice(p+cuda.DevPtr(g), []byte("written by the exporter")))
	fd, err := ctx.Export(h)
	require.NoError(t, err)
	f := os.NewFile(uintptr(fd), "cuda-allocation")
	defer f.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=import", "FRAMEHUB_HELPER_SIZE="+strconv.Itoa(2*g))
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "written by the exporter", string(out))
}

// importHelper imports fd 3, maps it read-only and prints 23 bytes from
// its second granule.
func importHelper() error {
	d, err := cuda.Load(cuda.Options{})
	if err != nil {
		return err
	}
	dev, err := d.Device(0)
	if err != nil {
		return err
	}
	ctx, err := d.Retain(dev)
	if err != nil {
		return err
	}
	defer ctx.Close()
	size, _ := strconv.Atoi(os.Getenv("FRAMEHUB_HELPER_SIZE"))
	h, err := ctx.Import(3)
	if err != nil {
		return err
	}
	defer ctx.Release(h)
	p, err := ctx.Map(h, size, cuda.ReadOnly)
	if err != nil {
		return err
	}
	defer ctx.Unmap(p, size)
	buf := make([]byte, 23)
	if err := ctx.CopyToHost(buf, p+cuda.DevPtr(size/2)); err != nil {
		return err
	}
	_, err = os.Stdout.Write(buf)
	return err
}
