// Package transport holds the multi-process integration tests of framehub's
// transport core: a producer running in the test process hands memfd
// surfaces to consumer processes (the test binary re-executed as a helper)
// over its SOCK_SEQPACKET socket, and the tests check fd passing, lease
// accounting, isolation of slow, stopped and killed consumers, the handling
// of malformed input and the read-only sharing of surfaces.
//
// The package has no non-test code besides this file.
package transport
