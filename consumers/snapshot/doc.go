// Package snapshot is the framehub snapshot consumer: on request (HTTP POST
// /snapshot, framehubctl snapshot) it takes the first raw frame captured at
// or after the requested CLOCK_MONOTONIC time, encodes it as JPEG, answers
// as soon as the JPEG exists, and writes the file behind a bounded
// in-memory queue, reporting when it is durable. It is the library behind
// cmd/framehub-snapshot; package snapshot/daemon holds the program's options.
//
// The field report behind this design (docs: ../shared/seeds/000): captures
// took up to 4 s because they were written synchronously to an SD card that
// stalls while it reallocates blocks. Here:
//
//   - Storage never holds a lease. The frame's lease lasts only while an
//     encoder reads the frame (grabber.serve); the write queue holds JPEG
//     bytes, not frames. The lease hold time is a metric
//     (framehub_snapshot_lease_hold_seconds) and part of every status.
//   - Storage never delays the answer. A request reserves a queue slot
//     before it takes a frame, so when the queue is full it is refused at
//     once (ErrBusy, HTTP 503 "storage busy") and nothing already accepted
//     is dropped. One writer goroutine writes each file to a temporary
//     name, fsyncs it, renames it, and fsyncs the directory once per batch.
//   - Durability is notified: GET /snapshot/{id} (optionally waiting), a log
//     line, a webhook POST and a Unix datagram, all carrying a Status.
//   - Storage errors (ENOSPC, EIO...) are logged, counted by reason and
//     retried with backoff; a snapshot that still fails is reported failed;
//     /healthz says 503 ("storage_failing") while storage is failing, and
//     ("not_connected") while not subscribed; the daemon goes on.
//
// Subscription: policy latest, budget 1, every frame received and released
// at once while no request waits (see grabber for why).
//
// Encoders: GstEncoder (jpegenc in a gst-launch-1.0 child, the default when
// GStreamer is installed: several times faster, see docs/bench/snapshot.md)
// and GoEncoder (image/jpeg, always available). Neither needs cgo, so the
// daemon builds with CGO_ENABLED=0. nvjpegenc (Jetson) is not used: it needs
// NVMM input, which a consumer of framehub's memfd/DMA-BUF surfaces does
// not have without a conversion element; a Jetson build would add it as a
// third gst-launch pipeline.
package snapshot
