// Command framehub-web is framehub's web daemon: a page with every camera
// live in the browser (WebRTC, with LL-HLS as the fallback), snapshots of
// the latest frame, and the recordings by time range.
package main

import (
	"github.com/framehub/framehub/consumers/web/daemon"
	"github.com/framehub/framehub/internal/daemonrun"
)

const usage = `Usage: framehub-web [flags]

Serves each camera (a framehub producer, with its recorder's and snapshot
service's directories) in a browser, at http://127.0.0.1:8889/ by default:

  GET  /                                  the page: every camera live, frame rate, viewers,
                                          recording state, snapshot button, recordings
  POST /<camera>/whep                     WebRTC live view (WHEP: SDP offer in, 201 + answer out)
  DELETE /<camera>/whep/<session>         end a WHEP session (admin token)
  GET  /<camera>/index.m3u8               LL-HLS live view (fMP4)
  GET  /<camera>/snapshot.jpg[?width=N]   the latest frame as JPEG
  GET  /<camera>/snapshots/               stored snapshots (JSON); /<camera>/snapshots/<id>.jpg one
  GET  /list?camera=&start=&end=          recorded segments in a time range (RFC 3339), JSON
  GET  /get?camera=&start=&duration=      one MP4 of a time range, across segments, cut on
                                          keyframes, with Range support (e.g. duration=10s)
  GET  /api/cameras, /healthz, /metrics   status (JSON), health, Prometheus metrics

Viewing needs no token but only answers requests whose Host names this daemon
(DNS rebinding); anyone who reaches -addr can watch, so it listens on loopback
by default. Ending a session needs the admin token (docs/SECURITY.md).

  framehub-web -camera name=cam,socket=/run/framehub/framehub.sock,recordings=/var/lib/framehub/recordings,snapshots=/var/lib/framehub/snapshots

Settings come from the flags below, or from a YAML file given with -config whose keys
are the flag names; cameras are a list under "camera" with the keys name, socket,
stream, raw-stream, recordings, snapshots and admin (the producer's admin address:
the page then lists its consumers, read with the admin token). A flag given on the command line wins
over the file. docs/WEB.md tells more.

Flags:
`

func main() {
	var opts daemon.Options
	daemonrun.Main("framehub-web", usage, &opts)
}
