// Package recorder is framehub's recorder: it subscribes to a producer's
// H.264 stream and writes it to crash-safe MP4 segment files, continuously
// or around events. cmd/framehub-recorder is the program; this package is
// not a stable API (only sdk/ is).
//
// # Data path
//
//	producer ─► receiver goroutine ─► bounded queue ─► writer goroutine ─► storage (FS)
//	            copy AU, Release,      (bytes; full:     fragments, fsync,
//	            gaps, pre-event ring    drop whole GOPs)  segments, retention
//
// The receiver copies every access unit out of the shared slab (converting
// it from Annex-B to the AVCC form MP4 stores, in the same pass) and
// releases the lease at once, so neither a slow disk nor the pre-event
// buffer ever pins the producer's surfaces: the producer sees a consumer
// that holds each frame for microseconds. Storage is touched only by the
// writer goroutine, through the FS interface (tests inject a stalling or
// failing disk).
//
// # Muxing: fragmented MP4 written in Go
//
// The recorder writes fragmented MP4 itself (mp4.go, ~300 lines) instead of
// using GStreamer's splitmuxsink or mediacommon's fmp4 package:
//
//   - Durability must be known, not hoped for: zero-gap restart needs the
//     capture time of the last access unit that is on disk, which means
//     writing a fragment and fsync'ing it ourselves. splitmuxsink's
//     filesink neither fsyncs nor tells which buffer reached the disk.
//   - Repair needs a box reader anyway (mp4_read.go), and the files carry
//     two boxes of their own (below); with our own writer the two agree by
//     construction.
//   - No cgo, no GStreamer in the recorder: it builds with CGO_ENABLED=0
//     like any SDK consumer and cannot be crashed by a pipeline.
//     mediacommon's fmp4 would pull abema/go-mp4 (reflection-based boxes)
//     for a fixed box layout of one video track. Only its H.264 SPS parser
//     is used (mediacommon/v2/pkg/codecs/h264, pure Go, already a module
//     dependency).
//
// A segment is ftyp, moov (one avc1 track, 90 kHz, mvex), a segment info
// box, then fragments: a fragment info box, moof (tfdt, one trun with each
// sample's duration, size, sync flag and composition offset) and mdat. The
// two info boxes are "uuid" boxes players skip: the segment's boot id and
// timeline origin (producer DTS of media time 0), and per fragment the
// producer sequence numbers and capture times (CLOCK_MONOTONIC and
// CLOCK_REALTIME) of its samples. Sample times are the producer's
// timestamps relative to the segment's first DTS, each rounded to 90 kHz
// from its absolute value, so durations never drift.
//
// # Segments
//
// A segment lasts Segment (default 60 s): it ends at the first keyframe at
// or after that duration; when that keyframe is two frames late the
// recorder asks the producer for one (RequestKeyframe), so segments never
// run a GOP long. It is named by the UTC capture time of its first frame,
// Dir/2026-11-22/2026-11-22T00-41-12.345Z.mp4 (sortable), and carries
// ".part" while written: a *.mp4 file is closed and never changes. A new
// segment also starts when the SPS/PPS change or the producer's timeline
// restarts (a producer restart). Frames the producer skipped for the
// recorder (it was stopped or starved beyond its budget) are fetched again:
// the receiver resubscribes with a replay from the last frame it has, at
// most once every 5 s. A gap that cannot be filled (a producer restart,
// frames older than the replay window, skips more often than that) never
// breaks a GOP: the receiver drops everything until the next keyframe (and
// asks for one), logs and counts the gap; the segment goes on, its next
// fragment's decode time jumping over the hole.
//
// # Crash safety
//
// Every Fragment (default 1 s) of media is written with one write(2) and
// fsync'ed, together with the durations in the moov (fixed 8-byte fields
// patched in place), so a kill -9 or a power loss loses at most the
// fragment being built, and even a segment nobody repaired says how long
// it is. On start the recorder reads every *.part box by box: a torn last
// fragment (a power loss mid-write) is cut off, every complete fragment is
// kept, and the segment is finalised (durations written, renamed to
// *.mp4), unless it is the newest and may be continued (below). A write
// that fails is undone (ftruncate) so that a torn fragment never sits in
// front of a good one.
//
// # Zero-gap restart
//
// The resume point is the fragment info box of the newest segment's last
// fragment: the producer sequence number and capture time of the last
// access unit made durable. It is written by the same write and made
// durable by the same fsync as the media, so it can never disagree with
// the file (a separate state file, renamed after each fsync, would leave
// a window where the media is durable and the state is not: a restart
// would record those frames twice). The recorder dials with
// sdk.Options{ReplayFrom: that capture time}; the producer replays every
// frame of its replay buffer captured after it (flagged REPLAY), then
// live frames. When the first one follows the last durable one (its
// sequence number is the next), the interrupted segment is reopened and
// continued: a GOP cut by the crash goes on in the same file, and the
// recording has no hole and no frame twice, as long as the recorder came
// back within the producer's replay window (framehub-producer
// -h264-replay, default 30 s). Otherwise the interrupted segment is
// finalised and the next one starts at a keyframe. Capture times compare
// only within one boot (the boot id is in each segment): after a reboot
// the recorder asks for everything the producer kept.
//
// A stopping recorder (SIGTERM) asks for a keyframe and records up to the
// frame before it (at most 2 s), so it ends its segment on a GOP boundary:
// the next start resumes with that keyframe in a new segment, losing
// nothing. When the connection to the producer ends, the recorder redials
// with backoff and ReplayFrom = the last frame it received, so a producer
// restart loses only what the producer lost. (It does not use the SDK's
// Reconnect, whose ReplayFrom is fixed at Dial.)
//
// # Event mode
//
// With Mode ModeEvent the receiver keeps the last Pre seconds (from a
// keyframe) as copied access units. POST /record/event on the admin API
// (framehubctl record event) starts a segment at the newest buffered
// keyframe captured at least pre seconds before the event and records until
// post seconds after it; an event during a recording extends it. Request:
// POST /record/event with an optional JSON body {"pre_seconds": 5,
// "post_seconds": 10, "label": "door"} (pre defaults to and is capped by
// -pre, post defaults to -post). Response 200: {"file":
// "DIR/2026-11-22/2026-11-22T00-41-07.345Z-event-door.mp4", "start":
// "2026-11-22T00:41:07.345Z", "pre_seconds": 5.03, "post_seconds": 10,
// "extended": false}; 409 when not in event mode; 503 when no video came
// within 5 s; 400 for a bad body. On start the event mode replays the last
// Pre seconds from the producer, so the buffer is full at once.
//
// # Storage
//
// The queue between receiver and writer is bounded in bytes (QueueBytes,
// default 32 MiB, about a minute at 4 Mbit/s). When it is full the access
// unit and the rest of its GOP are dropped (the part already queued is a
// prefix in decode order, which decodes) until a keyframe fits; each GOP
// that lost frames is counted (framehub_recorder_dropped_gops_total
// {reason="queue_full"}). ENOSPC deletes the oldest closed segments
// (whatever the limits) and retries; EIO and other errors drop the
// fragment and what follows until the next keyframe; both are logged with
// the errno and counted. Retention deletes closed segments, oldest first,
// beyond KeepBytes (counting the open segment, which is never deleted) and
// KeepAge, after each segment and every minute, from an index built at
// start (no tree walk).
//
// # Health and metrics
//
// GET /healthz (Health: every daemon's ok, status, reason and since, then
// the recorder's own keys) is 503 while the recorder is not subscribed to
// the producer ("not_connected", with why the last attempt failed), when an
// access unit has waited more than 3 fragments to be durable
// ("storage_stalled"), or, in continuous mode, when frames arrive but
// nothing was written for 3 fragments ("not_writing"). The
// metrics are framehub_recorder_*: segments_total, bytes_total,
// frames_total, fragments_total, dropped_gops_total{reason},
// dropped_frames_total{reason}, gaps_total, queue_bytes, queue_frames,
// write_seconds (histogram: write + fsync of a fragment),
// write_errors_total{errno}, retention_deleted_total{reason},
// retention_deleted_bytes_total, events_total, replayed_frames_total,
// reconnects_total, refetches_total, recovered_segments_total{action},
// last_write_timestamp_seconds.
package recorder
