// Command framehub-producer owns the camera and the H.264 encoder and shares
// their frames (streams "raw", NV12, and "h264") with consumer processes over
// a Unix socket, without copying pixels.
package main

import (
	"github.com/framehub/framehub/internal/daemonrun"
	"github.com/framehub/framehub/producer/daemon"
)

const usage = "Usage: framehub-producer [flags]\n\n" +
	"Owns the camera and the H.264 encoder and serves their frames to framehub consumers on a Unix\n" +
	"socket: stream \"raw\" (NV12 surfaces, zero-copy) and stream \"h264\" (access units).\n\n" +
	"Settings come from the flags below, or from a YAML file given with -config whose keys are the\n" +
	"flag names (e.g. \"width: 1280\", \"default-max-hold: 2s\", \"allow-uid: [1000]\"); a flag given on\n" +
	"the command line wins over the file.\n\nFlags:\n"

func main() {
	var opts daemon.Options
	daemonrun.Main("framehub-producer", usage, &opts)
}
