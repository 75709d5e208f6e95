package sdk_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/sdk"
)

// Subscribe to a producer's raw stream, read three frames in place and
// release each one. (The producer here runs in the same process, with the
// synthetic source, so that the example runs anywhere; a real consumer
// dials sdk.DefaultAddr().)
func ExampleDial() {
	addr, stop, err := exampleProducer()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, addr, sdk.Options{Stream: "raw", Name: "example", MaxInFlight: 2, MaxHold: time.Second})
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	defer c.Close()
	caps := c.Caps()
	sub := c.Subscription()
	fmt.Printf("subscribed to %q: %s %dx%d, budget %d\n", sub.Stream, caps.Format, caps.Width, caps.Height, sub.MaxInFlight)

	var last uint64
	for i := 1; i <= 3; i++ {
		f, err := c.Next(ctx)
		if err != nil {
			fmt.Println("next:", err)
			return
		}
		y, err := f.Plane(0) // the luma plane, mapped read-only: no copy
		if err != nil {
			fmt.Println("plane:", err)
			f.Release()
			return
		}
		stride := f.Planes()[0].Stride
		fmt.Printf("frame %d: Y plane %d bytes, stride %d, newer than the last: %v\n", i, len(y), stride, f.Seq() > last)
		last = f.Seq()
		f.Release() // give the surface back before waiting for the next frame
	}
	st := c.Stats()
	fmt.Printf("received %d, released %d, held %d\n", st.Received, st.Released, st.Unreleased)
	// Output:
	// subscribed to "raw": NV12 320x240, budget 2
	// frame 1: Y plane 76800 bytes, stride 320, newer than the last: true
	// frame 2: Y plane 76800 bytes, stride 320, newer than the last: true
	// frame 3: Y plane 76800 bytes, stride 320, newer than the last: true
	// received 3, released 3, held 0
}

// exampleProducer runs a producer with a 320x240 synthetic raw stream at
// 30 fps on a socket in a temporary directory, until stop is called.
func exampleProducer() (addr string, stop func(), err error) {
	p, err := producertest.Start(producertest.Options{FPS: 30, PoolMin: 2, PoolMax: 8, PoolName: "example",
		Config: producer.Config{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		return "", nil, err
	}
	return p.Addr, func() { _ = p.Close() }, nil
}
