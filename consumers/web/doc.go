// Package web is framehub's web daemon (cmd/framehub-web): for a list of
// cameras, each a producer with its recorder's and snapshot service's
// directories, it serves a page with every camera live (WebRTC through
// WHEP, LL-HLS as the fallback), JPEG snapshots of the latest frame, the
// stored snapshots, and the recordings (listed by time range, or one MP4
// of any range). docs/WEB.md tells the design and its reasons. This
// package is not a stable API (only sdk/ is).
package web
