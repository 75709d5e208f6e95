// Package sdk is framehub's consumer SDK: the stable public API for programs
// that receive frames from a framehub producer.
//
// A consumer dials the producer's socket and subscribes to one stream:
//
//	c, err := sdk.Dial(ctx, "/run/framehub/framehub.sock", sdk.Options{Stream: "raw", MaxInFlight: 4})
//	if err != nil { ... }
//	defer c.Close()
//	for {
//		f, err := c.Next(ctx)
//		if err != nil { ... }
//		y, _ := f.Plane(0) // read-only, mapped once per surface
//		use(y)
//		f.Release()
//	}
//
// Client.Consume is that loop, with evictions and reconnects handled.
//
// Every Frame is a lease on a surface shared with the producer and the other
// consumers. Release it as soon as you are done: a consumer holding
// MaxInFlight frames gets no new ones (they are skipped and counted as
// dropped), and a lease held past MaxHold gets the consumer evicted. The
// mapping is read-only: the kernel refuses writes.
//
// Frames in GPU memory (cuda surfaces, DMA-BUFs of GPU memory) have no CPU
// mapping: Plane and Data fail with ErrNoCPUMapping, and package sdk/cuda
// gives device pointers to cuda surfaces instead.
//
// The package does not use cgo and has no GStreamer dependency, so a consumer
// builds as a small static binary. Its exported API follows semantic
// versioning from v1: additions only within a major version.
package sdk
