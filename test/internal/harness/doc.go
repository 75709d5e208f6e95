// Package harness holds what the multi-process integration tests under
// test/ (snapshot, transport, recorder, streamer, media, plugin) need in
// common: building the binaries they run (GoBuild, BuildToTemp), an
// in-process producer serving a synthetic stream (StartProducer) and a
// well-behaved consumer of it (RunGoodConsumer), running a server's Run
// until cleanup (RunBackground), re-executing the test binary as a helper
// process (HelperCommand), daemon children that cannot outlive the test
// binary (StartDaemon, StartOrphanless), test loggers (Logger, LogWriter),
// descriptor counting (FDCount, CountFDs, FDsLinkingTo) and reading admin
// APIs (HTTPDo, ParseMetrics).
//
// Every helper that takes a testing.TB fails the test through it (with
// testify's require, as the tests do) and registers its own cleanups with
// t.Cleanup; what a caller must still clean up itself is said on each
// helper. Timeouts are the caller's: each test package keeps its own
// deadline for things that should happen soon, because how long "soon" is
// depends on what the package runs (x264, GStreamer, the race detector).
package harness
