// Package streamer holds the end-to-end tests of framehub-streamer: a real
// producer process (cmd/framehub-producer, built by TestMain, -source test
// with x264enc) feeds the streamer, which runs in the test process (so the
// race detector sees it) or as its own built binary, and real RTSP clients
// (gst-launch-1.0 with rtspsrc, rtph264depay, h264parse and avdec_h264)
// play it over TCP and UDP.
//
// Decoded frames are counted from gst-launch-1.0 -v: a fakesink with
// silent=false updates its last-message property for every buffer it gets,
// and -v prints each update as a "last-message = chain ... pts: H:MM:SS.ns"
// line (it is flushed per line, so the test sees it at once). rtspsrc runs
// with latency=0: its jitter buffer otherwise holds the first packet for
// its whole latency (2 s by default) before anything is decoded, which is
// client-side buffering no server can shorten; TestTimeToFirstFrame logs
// that figure too.
//
// The package has no non-test code besides this file.
package streamer
