// Package ipcam holds the end-to-end tests of the producer's rtsp:// source
// (producer/media's camera and on-demand decoder) with real processes: a
// stand-in IP camera (the test binary re-executed as a helper, serving a
// real x264 stream over RTSP on 127.0.0.1 with gortsplib, see
// internal/testutil/ipcam) that the tests kill with SIGKILL and start
// again; the framehub-producer program reading it; the framehub-recorder
// program writing it to MP4 files, checked with GStreamer
// (gst-discoverer-1.0 and a real decode); framehubctl and the supervisor
// for what an operator sees; and SDK consumers in the test process.
// TestTwoCamerasInOneGroup runs two cameras from one group config under
// framehub-supervisor (a producer and a recorder per camera, one
// framehub-streamer for both, played by gst-launch-1.0's rtspsrc) and
// kills one camera's producer.
//
// The package has no non-test code besides this file.
package ipcam
