// Package media holds the multi-process end-to-end tests of the producer's
// GStreamer pipeline (producer/media): a real pipeline runs in the test
// process, and consumer processes (the test binary re-executed as a helper,
// see helperMain) receive raw NV12 frames and H.264 access units
// through the SDK and report what they saw as JSON lines.
//
// The package has no non-test code besides this file.
package media
