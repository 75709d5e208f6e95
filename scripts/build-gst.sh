#!/usr/bin/env bash
# Builds framehub's GStreamer plugins into DIR (default build/gst):
#   libgstframehubsrc.so   framehubsrc, C against docs/PROTOCOL.md (gst/framehubsrc)
#   libgstframehubsink.so  framehubsink, a c-shared Go library (gst/framehubsink)
# Use them with GST_PLUGIN_PATH=DIR (docs/GSTREAMER.md). `make gst` and the
# tests of test/gstelem run this script.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/gst}
mkdir -p "$out"
out=$(cd "$out" && pwd)
mods="gstreamer-1.0 gstreamer-base-1.0 gstreamer-video-1.0 gstreamer-allocators-1.0"
# shellcheck disable=SC2046 # pkg-config's flags are words
${CC:-gcc} -std=gnu99 -O2 -g -Wall -Wextra -Wno-unused-parameter -fPIC -shared \
	-fvisibility=hidden -Wl,--no-undefined \
	$(pkg-config --cflags $mods) "$root"/gst/framehubsrc/*.c $(pkg-config --libs $mods) \
	-o "$out/libgstframehubsrc.so.tmp"
mv "$out/libgstframehubsrc.so.tmp" "$out/libgstframehubsrc.so"
(cd "$root" && ${GO:-go} build -buildmode=c-shared -ldflags="-extldflags=-Wl,--no-undefined" -o "$out/libgstframehubsink.so.tmp" ./gst/framehubsink)
rm -f "$out/libgstframehubsink.so.h" "$out/libgstframehubsink.so.tmp.h" "$out/libgstframehubsink.h"
mv "$out/libgstframehubsink.so.tmp" "$out/libgstframehubsink.so"
