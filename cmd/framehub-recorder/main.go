// Command framehub-recorder is framehub's recorder: it subscribes to the
// producer's H.264 stream and writes crash-safe fragmented MP4 segments,
// continuously or around events, without ever holding the producer's
// surfaces while storage is slow.
package main

import (
	"github.com/framehub/framehub/consumers/recorder/daemon"
	"github.com/framehub/framehub/internal/daemonrun"
)

const usage = `Usage: framehub-recorder [flags]

Records a framehub producer's H.264 stream into MP4 segment files.

Segments: fragmented MP4 of -segment each (default 60 s), each starting on a keyframe,
named by the UTC capture time of their first frame: DIR/2026-11-22/2026-11-22T00-41-12.345Z.mp4.
A segment being written ends in .mp4.part; a closed segment is a .mp4 that never changes.

Crash-safe: every -fragment (default 1 s) of video is written and fsync'ed; a kill -9 or a
power loss loses at most that. On start the recorder repairs what a crash left (cuts a torn
last fragment) and asks the producer to replay every frame captured after the last one it
made durable: restarted within the producer's -h264-replay window (default 30 s), the
recording has no gap, and no frame twice. Stopped with SIGTERM it ends the segment on a
keyframe, so the next start resumes in a new segment without losing a frame.

Modes: continuous (default), or event (-mode event): the last -pre seconds are kept in memory
(copies, not leases) and an event records them plus -post seconds after it:
  curl -X POST http://127.0.0.1:7702/record/event -d '{"pre_seconds": 5, "post_seconds": 10, "label": "door"}'
  framehubctl record event
answers {"file": ..., "start": ..., "pre_seconds": ..., "post_seconds": ..., "extended": false}.

Storage: writes go through a queue of -queue-bytes on their own goroutine; a stalled disk
never delays the release of the producer's frames. A full queue drops whole GOPs (counted).
Retention deletes the oldest closed segments beyond -keep-bytes and -keep-age; a full disk
(ENOSPC) deletes the oldest segments so that recording goes on.

Admin API (-admin): POST /record/event, GET /healthz (503 while not subscribed to the producer,
saying why, and when access units wait more than 3 fragments to be written), GET /metrics
(framehub_recorder_*).

Settings come from the flags below, or from a YAML file given with -config whose keys are the
flag names (e.g. "segment: 5m", "keep-bytes: 20GiB", "mode: event"); a flag given on the
command line wins over the file.

Flags:
`

func main() {
	var opts daemon.Options
	daemonrun.Main("framehub-recorder", usage, &opts)
}
