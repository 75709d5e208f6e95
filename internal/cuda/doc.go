// Package cuda is framehub's binding of the CUDA driver API: the few entry
// points that the cuda surface kind (producer/surface), the GPU test source
// (producer/cudasrc), the consumer SDK (sdk/cuda) and the GPU tools need,
// called without cgo.
//
// # Loading
//
// Load dlopens libcuda.so.1 (the driver's library, installed with the
// kernel module; never the toolkit's libcudart) through purego, so programs
// that use this package still build with CGO_ENABLED=0; at run time they
// need the system's dynamic loader and libc, like any program that loads a
// driver. Every entry point is looked up once, by the exact name the driver
// exports: those whose ABI changed carry their version suffix
// (cuMemcpyDtoH_v2, cuDeviceGetUuid_v2, cuDevicePrimaryCtxRelease_v2, ...),
// which is what cuda.h's macros expand to. A missing symbol fails Load with
// its name: a driver too old for the virtual memory management API (CUDA
// 10.2) is refused up front, not at the first frame.
//
// Options.Library (or $FRAMEHUB_LIBCUDA) names another library: the tests
// load a stand-in written in C (package internal/cuda/standin) that
// implements every entry point listed in symbols.go on memfd-backed memory,
// so that the cuda surface kind runs end to end on machines without a GPU.
//
// # Contexts and threads
//
// CUDA keeps the current context per OS thread, while Go moves goroutines
// between threads. Context therefore makes itself current on the calling
// goroutine's thread at every call (runtime.LockOSThread, cuCtxSetCurrent,
// the call, UnlockOSThread): its methods may be called from any goroutine,
// and a goroutine that locked its thread itself keeps it locked. The
// context is the device's primary context (cuDevicePrimaryCtxRetain), the
// one the CUDA runtime (cudart) uses too, so device pointers made here are
// valid in a consumer's own runtime-API code on the same device; it also
// sidesteps cuCtxCreate, whose signature changed in CUDA 13.
//
// CUDA must not be used in a child created by fork(2) after cuInit in the
// parent. Go never forks without exec, so this matters only to programs
// that fork through other means.
//
// # Memory ownership
//
// Allocation handles, mappings, modules and streams are plain values; the
// caller releases each exactly once with the matching method (Release,
// Unmap, Unload, Destroy). File descriptors returned by Export and
// DMABufFD are owned by the caller and are close-on-exec.
package cuda
