// Package testutil holds what framehub's tests need in common, from the
// unit tests of fdpass and producer/surface to the multi-process suites
// under test/: building the binaries they run, with the race detector when
// the tests have it (GoBuild, BuildToTemp, CheckNoRace), running a
// server's Run until cleanup (RunBackground), re-executing the test binary
// as a helper process dispatched from TestMain (HelperCommand, RunHelper),
// daemon children that cannot outlive the test binary (StartDaemon,
// StartOrphanless), test loggers (Logger, LogWriter), descriptor counting
// (FDCount, CountFDs, CountOwnFDs, FDsLinkingTo), waiting for a condition
// (WaitUntil, Poll), telling a starved machine from a slow program and
// saying so when a rate could not be judged (StartCPUWindow,
// SkipUnjudged), an address that refuses connections (RefusingAddr), the
// Python of the Python consumer (PythonWithMsgpack) and reading admin APIs
// (HTTPDo, ParseMetrics). Its sub-package producertest runs an in-process
// producer.
//
// It imports nothing of framehub but internal/sysinfo, so that the tests
// of every package may use it. Being internal, it is not part of any API.
//
// Every helper that takes a testing.TB fails the test through it (with
// testify's require, as the tests do) and registers its own cleanups with
// t.Cleanup; what a caller must still clean up itself is said on each
// helper. Timeouts are the caller's: each test package keeps its own
// deadline for things that should happen soon, because how long "soon" is
// depends on what the package runs (x264, GStreamer, the race detector).
package testutil
