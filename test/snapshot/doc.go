// Package snapshot holds the integration tests of the snapshot consumer
// (consumers/snapshot, cmd/framehub-snapshot, framehubctl snapshot): a
// producer serving the static synthetic pattern runs in the test process;
// the snapshot service runs in the test process too (to inject stalling or
// failing writers) or as a real framehub-snapshot process built by the
// test, driven by a real framehubctl process.
//
// The package has no non-test code besides this file.
package snapshot
