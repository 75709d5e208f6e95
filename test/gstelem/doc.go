// Package gstelem tests framehub's GStreamer elements, framehubsrc and
// framehubsink (gst/), the way their users run them: real gst-launch-1.0
// processes, real producers (framehub-producer) and real consumers
// (examples/consumer-go), over real sockets.
//
// What the pipelines do to buffers is observed from inside gst-launch-1.0
// by testdata/fhcheck.c, a GStreamer tracer the tests build into a plugin of its own
// and load with GST_TRACERS: for every buffer a sink receives it records
// whether each memory is fd memory, the inode of its fd and the inode of
// the mapping its bytes are read from (the same inode as the producer's
// memfd: no copy), and the frame's test stamp checked against its
// sequence number (a surface reused while a buffer still held it fails it).
//
// TestMain builds the plugins with scripts/build-gst.sh, unless
// $FRAMEHUB_GST_PLUGINS names a directory that has them (make test builds
// them first), and uses a GStreamer registry of its own, so that runs of
// other trees on the same machine do not see these plugins.
package gstelem
