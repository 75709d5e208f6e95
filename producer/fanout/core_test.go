package fanout

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

var replaySeed = flag.Int64("fanout.seed", -1, "run TestModel for this seed only")

const modelSteps = 2000

// TestModel drives the core and the model with 200 seeds × 2,000 random
// steps (20 seeds with -short), in parallel shards. A failure names the
// seed; replay it with: go test -run TestModel ./producer/fanout -args -fanout.seed=N
func TestModel(t *testing.T) {
	run := func(seed uint64) (*harness, error) {
		h, err := newHarness(randSource{rand.New(rand.NewPCG(seed, 0x66616e6f7574))})
		if err != nil {
			return nil, err
		}
		return h, h.run(modelSteps)
	}
	if *replaySeed >= 0 {
		if _, err := run(uint64(*replaySeed)); err != nil {
			t.Fatalf("seed %d: %v", *replaySeed, err)
		}
		return
	}
	seeds := uint64(200)
	if testing.Short() {
		seeds = 20
	}
	const shards = 4
	var mu sync.Mutex
	seen := map[string]int{}
	t.Run("shards", func(t *testing.T) {
		for shard := range uint64(shards) {
			t.Run(fmt.Sprintf("seeds%%%d=%d", shards, shard), func(t *testing.T) {
				t.Parallel()
				for seed := shard; seed < seeds; seed += shards {
					h, err := run(seed)
					if err != nil {
						t.Fatalf("seed %d: %v", seed, err)
					}
					mu.Lock()
					for k, v := range h.seen {
						seen[k] += v
					}
					mu.Unlock()
				}
			})
		}
	})
	if t.Failed() {
		return
	}
	// The driver must reach every rule, not only the easy paths.
	for _, k := range []string{"announce", "deliver", "forget", "send", "notice", "free", "attach", "attach reduced",
		"no capacity", "keyframe", "close max_hold", "close reclaimed", "close rate_limit", "close bad_release",
		"reclaimed for the pool", "dropped at the source"} {
		if seen[k] < int(seeds)/4 {
			t.Errorf("driver too weak: outcome %q seen %d times over %d seeds", k, seen[k], seeds)
		}
	}
	t.Logf("outcomes over %d seeds × %d steps: %v", seeds, modelSteps, seen)
}

// FuzzCore drives the model from fuzz bytes: go test -fuzz=FuzzCore ./producer/fanout
func FuzzCore(f *testing.F) {
	for seed := range uint64(8) {
		r := rand.New(rand.NewPCG(seed, 1))
		b := make([]byte, 512)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := newHarness(&byteSource{data: data})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.run(len(data)); err != nil {
			t.Fatal(err)
		}
	})
}
