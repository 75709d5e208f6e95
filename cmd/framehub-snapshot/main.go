// Command framehub-snapshot is framehub's snapshot consumer: it subscribes to
// the producer's raw stream and, on request (POST /snapshot on its admin
// address, or `framehubctl snapshot`), encodes the next frame as JPEG,
// answers at once and writes the file behind a bounded queue, reporting when
// it is durable.
package main

import (
	"github.com/framehub/framehub/consumers/snapshot/daemon"
	"github.com/framehub/framehub/internal/daemonrun"
)

const usage = `Usage: framehub-snapshot [flags]

Takes JPEG snapshots of a framehub producer's raw NV12 stream on request.

  curl -X POST 'http://127.0.0.1:7704/snapshot?format=jpeg' -o now.jpg
  framehubctl snapshot -o now.jpg -scale 640

Admin API (-admin): POST /snapshot (format=jpeg|json, quality, scale or width+height,
after=CLOCK_MONOTONIC ns, encoder=go|gst), GET /snapshot/{id}[?wait=5s], GET /healthz,
GET /metrics. A request answers as soon as the JPEG exists ("durable": false); the file
is written behind a queue of -queue snapshots (full: 503 "storage busy") and reported
durable (fsync of the file and of its directory) by GET /snapshot/{id}, a log line,
-webhook and -event-socket.

Settings come from the flags below, or from a YAML file given with -config whose keys
are the flag names (e.g. "quality: 90", "keep-bytes: 2GiB", "frame-timeout: 3s"); a
flag given on the command line wins over the file.

Flags:
`

func main() {
	var opts daemon.Options
	daemonrun.Main("framehub-snapshot", usage, &opts)
}
