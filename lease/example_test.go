package lease_test

import (
	"fmt"
	"time"

	"github.com/framehub/framehub/lease"
)

// A producer's view: a frame is published, leased by two consumers and
// returned to the pool once the producer and both consumers let go. A
// consumer that holds a lease past its deadline is evicted.
func Example() {
	tab := lease.New(func(f lease.FrameID) { fmt.Println("surface of frame", f, "back to pool") })
	start := time.Unix(0, 0)

	_ = tab.AddConsumer(1, lease.Limits{MaxInFlight: 2, MaxHold: 100 * time.Millisecond})
	_ = tab.AddConsumer(2, lease.Limits{MaxInFlight: 2}) // no deadline

	_ = tab.AddFrame(10) // count 1: the producer's hold
	a, _ := tab.Grant(1, 10, start)
	b, _ := tab.Grant(2, 10, start)
	_ = tab.Unhold(10) // producer moves on to the next frame
	fmt.Println("count", tab.Count(10))

	f, held, _ := tab.Release(1, a, start.Add(30*time.Millisecond))
	fmt.Println("consumer 1 released frame", f, "after", held)
	_, _, err := tab.Release(1, a, start.Add(31*time.Millisecond))
	fmt.Println(err)
	_, _, _ = tab.Release(2, b, start.Add(40*time.Millisecond))

	_ = tab.AddFrame(11)
	_, _ = tab.Grant(1, 11, start.Add(50*time.Millisecond))
	_ = tab.Unhold(11)
	deadline, _ := tab.NextDeadline()
	fmt.Println("next deadline", deadline.Sub(start))
	for _, c := range tab.Expired(deadline) {
		n, _ := tab.RemoveConsumer(c)
		fmt.Println("evicted consumer", c, "releasing", n, "lease(s)")
	}
	fmt.Println("frames", tab.Frames(), "leases", tab.Leases())
	// Output:
	// count 2
	// consumer 1 released frame 10 after 30ms
	// lease: release 1 for consumer 1: lease: unknown lease
	// surface of frame 10 back to pool
	// next deadline 150ms
	// surface of frame 11 back to pool
	// evicted consumer 1 releasing 1 lease(s)
	// frames 0 leases 0
}
