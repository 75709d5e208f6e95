//go:build race

package testutil

// RaceEnabled says whether this test binary runs with the race detector:
// the binaries GoBuild builds for it then have it too.
const RaceEnabled = true
