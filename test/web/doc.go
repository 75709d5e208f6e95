// Package web holds the browser tests of framehub-web (consumers/web,
// cmd/framehub-web): a real group (framehub-producer with GStreamer's test
// source and x264enc, framehub-recorder, framehub-web, built by the tests)
// played in headless Chromium (Debian's chromium, which make deps
// installs), driven through the DevTools protocol: the page, the WebRTC
// player, a changing picture, the LL-HLS player and an MP4 of the
// recordings across two segments in a <video>. The latency report
// (TestLatencyReport) also starts framehub-streamer on the same producer
// and plays it with gortsplib's RTSP client.
//
// The package has no non-test code besides this file.
package web
