// Package media is the producer's GStreamer pipeline: it owns the camera
// (or a test source) and the H.264 encoder, and feeds the producer's "raw"
// and "h264" streams without copying pixels.
//
// # Data path
//
//	source ! (convert/scale when needed) ! NV12 caps ! appsink fh_raw   ── raw stream (leases on the GstBuffers)
//	appsrc fh_encsrc ! videoconvert ! encoder ! h264parse ! appsink fh_h264 ── h264 stream (one copy per access unit)
//
// Zero-copy at the source: the raw appsink's sink pad answers the ALLOCATION
// query (a pad probe, internal/gst) with a GstBufferPool of sealed memfds,
// so videotestsrc, videoconvert or nvvidconv write their pixels straight
// into memory consumers can map (read-only: they receive an O_RDONLY reopen,
// and the memfd carries F_SEAL_FUTURE_WRITE). Each such buffer is published
// with Stream.PublishRef under a surface id of its own (≥ 1<<16, so never a
// copy-pool id), and the GstBuffer reference is held until the last
// consumer released its lease: the pool cannot reuse the surface meanwhile.
// Buffers that arrive already as DMA-BUFs (v4l2src io-mode=dmabuf) are
// adopted the same way, keyed by the dma-buf's inode, their GstBuffer
// referenced until the last lease ends: the cross-process form of the fix
// for seed 000 (a pool reused a surface a consumer still held). Only buffers
// with no fd at all are copied, once, into the stream's copy pool
// (Stats.CopiedFrames).
//
// # Why no tee
//
// The design sketch puts a tee between the source and the two branches. A
// tee answers the ALLOCATION query itself: it queries each of its src pads'
// peers and aggregates size, minimum buffers, alignment and metas, but adds
// the pool as NULL (gst_query_add_allocation_pool (query, NULL, ...) in
// gsttee.c, "force upstream allocation"), whether it has one src pad or
// several. Behind a tee the source would never see framehub's memfd pool and
// every frame would have to be copied. So the raw appsink is the only sink
// of the source's branch, and the encoder is fed from the very same
// GstBuffers through an appsrc in a second, unlinked chain of the same
// pipeline (one clock, one bus, one state): a gst_buffer_ref, no copy. The
// encoder's hold is a producer hold on the surface, so the pool's maximum
// covers it: the appsrc queues at most one frame and drops the oldest
// (leaky) rather than ever blocking the source.
//
// # Never block the source
//
// Leases and the encoder keep buffers out of their pool. A source that found
// its pool empty would block, and every consumer would stall behind the
// slowest one. So a frame is dropped at the source (Stats.RawDropped, logged
// once a second) when publishing it would leave the source no buffer for
// the next frame; for framehub's own pool that is exact (the pool counts its
// outstanding buffers), for a foreign pool (a camera driver's) framehub keeps
// its lease references below the pool's maximum minus a reserve.
//
// # At rest
//
// Samples reach Go through an eventfd and one goroutine per appsink
// (fhgst.SampleWatch), never on GStreamer's threads. Each wake-up of the Go
// runtime costs several context switches (its sysmon thread leaves its idle
// sleep and polls every 20 µs while anything runs), so a pipeline without an
// encoder whose raw stream has no consumer lets the appsink's streaming
// thread drop the frames itself while their caps stay the same
// (SampleWatch.SetIdle), counting them (Stats.UnwatchedFrames, published on
// the raw stream's counters once a second). The raw stream's OnConsumers
// ends idling when a consumer subscribes; a caps change ends it too. With
// idling and the stream's service ticker stopped while no consumer is
// subscribed, the producer at rest costs about what `videotestsrc ! shmsink`
// does (docs/BENCHMARKS.md).
//
// # No cgo call per frame
//
// Every cgo call enters the Go runtime's system-call state, and the first
// after an idle spell wakes sysmon, which then polls every 20 µs (~1 ms of
// CPU each time on the 2-vCPU VM the benchmarks run on). So the raw sink's
// watch is prepared (SampleWatch.Prepare) once Go accepted the caps: the
// streaming thread pulls each frame of framehub's memfd pool, describes and
// references its buffer into a ring Go reads from its own memory, and the
// references Go drops (the sample after publishing, the lease's buffer when
// the last consumer released it) go back through the pool, which takes them
// before it hands out a buffer, or directly while it waits for one. The
// bus is watched the same way (fhgst.BusWatch: an eventfd the bus's sync
// handler signals for errors, warnings and EOS) instead of being polled
// once a second. A frame that a source filled in framehub's pool then
// reaches consumers without any cgo call; frames in a foreign pool, and
// those the encoder, a camera's decoder or the test stamp take, still make
// theirs.
//
// # Failures
//
// A pipeline error (camera unplugged, negotiation failure) or end of stream
// is logged with the element's name and GStreamer's debug string, told to
// consumers with EOS on both streams, and followed by a restart with
// exponential backoff (Config.RetryMin..RetryMax). Missing elements and
// devices are reported by New, naming the device, or the element and the
// Debian package that provides it (*MissingElementError).
//
// Capture times: GStreamer's default clock is CLOCK_MONOTONIC, so a frame's
// capture time is the pipeline's base time plus its running time; both
// streams carry it, and consumers measure latency against it.
package media
