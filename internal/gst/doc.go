// Package gst holds the small cgo helpers framehub's media pipeline needs and
// github.com/go-gst/go-gst v1.4.0 does not offer, with explicit ownership:
//
//   - FhMemfdPool (fhgst.c), a GstBufferPool whose buffers are sealed memfds:
//     memfd_create(MFD_CLOEXEC|MFD_ALLOW_SEALING), ftruncate, seal
//     F_SEAL_SHRINK|F_SEAL_GROW, wrap with gst_fd_allocator_alloc
//     (GST_FD_MEMORY_FLAG_KEEP_MAPPED), map it read-write once so the
//     producer's only writable mapping exists, then seal F_SEAL_FUTURE_WRITE
//     and F_SEAL_SEAL and reopen /proc/self/fd/N O_RDONLY: that read-only fd
//     is what consumers receive. NV12 buffers get producer/surface.NV12's
//     plane layout, described by a GstVideoMeta.
//   - An ALLOCATION query answer (Element.InstallAllocationProbe): a pad
//     probe on an appsink's sink pad that proposes a new FhMemfdPool, so the
//     source writes its pixels straight into shareable memory.
//   - Sample and Buffer: samples pulled from an appsink and buffer
//     references with exactly one owner each. go-gst's own wrappers drop
//     their references in finalizers, whenever the garbage collector runs;
//     a GstBuffer held that way keeps a pool surface busy for an unknown
//     time, which framehub's leases must control exactly.
//   - Sample.Describe: the fds, inodes and plane layout of a buffer's
//     memories (ours, DMA-BUF, or other fd memory), read from GstVideoMeta.
//     Every memory it returns is tagged (GstMiniObject qdata) and registered
//     with an Observer, which is told when the memory is finalized: that is
//     when consumers must forget the surface.
//   - SampleWatch and BusWatch: an appsink's samples and a bus's messages
//     announced on an eventfd that Go reads through the netpoller, so that
//     GStreamer's threads never run Go code. A prepared SampleWatch goes
//     further: the streaming thread pulls, describes and references each
//     frame of an FhMemfdPool into a ring in C memory that Go reads without
//     a cgo call, and Go gives its references back through the pool's
//     FhDeferred ring (fhgst.h), which the pool drains before it hands out
//     a buffer: a frame then costs the Go side no cgo call, each of which
//     would wake the runtime's sysmon.
//   - Force-key-unit events, appsrc pushes, parse with missing-element
//     reporting, and the pipeline's CLOCK_MONOTONIC base time.
//
// The package needs pkg-config and the development files of gstreamer-1.0,
// gstreamer-app-1.0, gstreamer-video-1.0 and gstreamer-allocators-1.0
// (Debian: libgstreamer1.0-dev, libgstreamer-plugins-base1.0-dev).
package gst
