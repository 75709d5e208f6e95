package cuda

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"github.com/ebitengine/purego"
)

// DefaultLibrary is the driver library Load opens when neither
// Options.Library nor $FRAMEHUB_LIBCUDA names another.
const DefaultLibrary = "libcuda.so.1"

// LibraryEnv names the environment variable that overrides DefaultLibrary:
// the tests point it at the stand-in library, and an operator may point it
// at a driver outside the loader's path.
const LibraryEnv = "FRAMEHUB_LIBCUDA"

// Result is a CUresult.
type Result uint32

// CUresult values this package and its callers test for.
const (
	Success          Result = 0   // CUDA_SUCCESS
	ErrInvalidValue  Result = 1   // CUDA_ERROR_INVALID_VALUE
	ErrOutOfMemory   Result = 2   // CUDA_ERROR_OUT_OF_MEMORY
	ErrNoDevice      Result = 100 // CUDA_ERROR_NO_DEVICE
	ErrInvalidHandle Result = 400 // CUDA_ERROR_INVALID_HANDLE
	ErrNotFound      Result = 500 // CUDA_ERROR_NOT_FOUND
	ErrNotPermitted  Result = 800 // CUDA_ERROR_NOT_PERMITTED
	ErrNotSupported  Result = 801 // CUDA_ERROR_NOT_SUPPORTED
)

// Error is a failed driver call: which call, with what, and the driver's
// name and description of the result.
type Error struct {
	Op   string // the call and its salient arguments, e.g. "cuMemCreate(12582912 bytes on device 0)"
	Code Result
	Name string // e.g. "CUDA_ERROR_OUT_OF_MEMORY"
	Desc string // the driver's description
}

func (e *Error) Error() string {
	return fmt.Sprintf("cuda: %s: %s (%d): %s", e.Op, e.Name, e.Code, e.Desc)
}

// IsResult reports whether err is (or wraps) a driver error with code r.
func IsResult(err error, r Result) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == r
}

// Options configure Load.
type Options struct {
	// Library is the path or soname of the driver library. It defaults to
	// $FRAMEHUB_LIBCUDA, else DefaultLibrary.
	Library string
}

// Driver is the loaded driver library. It is safe for concurrent use. The
// library stays loaded for the life of the process: the CUDA driver does
// not support being unloaded, so Driver has no Close.
type Driver struct {
	path string
	fn   [numSyms]uintptr
}

// Load opens the driver library, resolves every entry point the package
// uses and calls cuInit(0). It fails with the library's path when the
// library is missing (no NVIDIA driver on this machine), with the symbol's
// name when the driver is too old, and with the driver's error when cuInit
// fails (no device, driver/kernel module mismatch).
func Load(opts Options) (*Driver, error) {
	path := opts.Library
	if path == "" {
		path = os.Getenv(LibraryEnv)
	}
	if path == "" {
		path = DefaultLibrary
	}
	lib, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("cuda: load the driver library %s (is the NVIDIA driver installed?): %w", path, err)
	}
	d := &Driver{path: path}
	for i, name := range symNames {
		p, err := purego.Dlsym(lib, name)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("cuda: %s has no %s (driver older than CUDA 11.7?): %w", path, name, err)
		}
		d.fn[i] = p
	}
	if r := d.call(symInit, 0); r != Success {
		return nil, d.err(r, "cuInit(0) with "+path)
	}
	return d, nil
}

// Path is the library Load opened.
func (d *Driver) Path() string { return d.path }

// call calls entry point s. Arguments that point to Go memory must be
// written as uintptr(unsafe.Pointer(&x)) in the call itself: the
// uintptrescapes directive then moves x to the heap, where it does not move,
// and keeps it alive until call returns.
//
//go:uintptrescapes
func (d *Driver) call(s sym, args ...uintptr) Result {
	r, _, _ := purego.SyscallN(d.fn[s], args...)
	return Result(uint32(r))
}

// err returns the *Error for a failed call.
func (d *Driver) err(r Result, op string) error {
	e := &Error{Op: op, Code: r, Name: "CUDA_ERROR_UNKNOWN_RESULT", Desc: "unknown result"}
	var s *byte
	if d.call(symGetErrorName, uintptr(r), uintptr(unsafe.Pointer(&s))) == Success && s != nil {
		e.Name = cString(s)
	}
	s = nil
	if d.call(symGetErrorString, uintptr(r), uintptr(unsafe.Pointer(&s))) == Success && s != nil {
		e.Desc = cString(s)
	}
	return e
}

// cString copies the NUL-terminated string at p (memory the driver owns).
func cString(p *byte) string {
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// Version returns the driver's CUDA version, 1000*major + 10*minor (13000
// for CUDA 13.0).
func (d *Driver) Version() (int, error) {
	var v int32
	if r := d.call(symDriverGetVersion, uintptr(unsafe.Pointer(&v))); r != Success {
		return 0, d.err(r, "cuDriverGetVersion")
	}
	return int(v), nil
}
