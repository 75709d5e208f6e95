// Package recorder holds the end-to-end tests of the recorder
// (consumers/recorder, cmd/framehub-recorder): a real framehub-producer
// process (GStreamer videotestsrc and x264enc) and a real framehub-recorder
// process, both built by the tests, killed and restarted by them; the
// recorder runs in the test process only where a stalling disk must be
// injected. The files are checked with the recorder's own MP4 reader
// (every sample, its producer sequence number and timestamps),
// gst-discoverer-1.0 (duration, codec, size) and a real decode
// (qtdemux ! h264parse ! avdec_h264, frames counted).
//
// The package has no non-test code besides this file.
package recorder
