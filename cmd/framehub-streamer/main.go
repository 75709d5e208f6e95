// Command framehub-streamer serves a framehub producer's H.264 stream (or
// several cameras' producers, each at its own path) over RTSP (TCP and
// UDP, any number of viewers), and optionally publishes it to an external
// RTSP server such as MediaMTX.
package main

import (
	"github.com/framehub/framehub/consumers/streamer/daemon"
	"github.com/framehub/framehub/internal/daemonrun"
)

const usage = "Usage: framehub-streamer [flags]\n\n" +
	"Subscribes to a framehub producer's H.264 stream and serves it over RTSP at\n" +
	"rtsp://<rtsp-addr>/<path> (default rtsp://127.0.0.1:8554/cam), over TCP and UDP, to any number of\n" +
	"viewers. A new viewer starts on a fresh keyframe (requested from the producer), or from the cached\n" +
	"GOP when none comes within -keyframe-wait. A slow viewer loses only its own frames. With -publish\n" +
	"the stream is also pushed to an external RTSP server (e.g. MediaMTX), reconnecting with backoff.\n" +
	"The streamer survives producer restarts: viewers stay connected and see continuous timestamps.\n" +
	"With -camera name=socket (once per camera) it serves several producers from one process, each\n" +
	"at rtsp://<rtsp-addr>/<name>.\n\n" +
	"Prometheus metrics are served on http://<admin>/metrics and health on http://<admin>/healthz\n" +
	"(503 when no frame came from the producer for -health-stale).\n\n" +
	"Settings come from the flags below, or from a YAML file given with -config whose keys are the\n" +
	"flag names (e.g. \"rtsp-addr: 0.0.0.0:8554\", \"keyframe-wait: 300ms\", \"user: viewer\"); a flag given\n" +
	"on the command line wins over the file.\n\nFlags:\n"

func main() {
	var opts daemon.Options
	daemonrun.Main("framehub-streamer", usage, &opts)
}
