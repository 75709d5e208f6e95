package fanout

import (
	"flag"
	"math/rand/v2"
	"testing"

	"github.com/framehub/framehub/internal/modeltest"
)

var replaySeed = flag.Int64("fanout.seed", -1, "run TestModel for this seed only")

const modelSteps = 2000

// TestModel drives the core and the model with 200 seeds × 2,000 random
// steps (20 seeds with -short), in parallel shards. A failure names the
// seed; replay it with: go test -run TestModel ./producer/fanout -args -fanout.seed=N
func TestModel(t *testing.T) {
	seeds := uint64(200)
	if testing.Short() {
		seeds = 20
	}
	seen := modeltest.RunSeeds(t, seeds, *replaySeed, func(seed uint64) (map[string]int, error) {
		h, err := newHarness(modeltest.Rand(seed, 0x66616e6f7574))
		if err != nil {
			return nil, err
		}
		return h.seen, h.run(modelSteps)
	})
	if seen == nil || *replaySeed >= 0 {
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
		h, err := newHarness(modeltest.Bytes(data))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.run(len(data)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestUnwatched: frames the source dropped while nobody was subscribed
// count as published and use up sequence numbers.
func TestUnwatched(t *testing.T) {
	c, err := New(Config{Capacity: 8})
	if err != nil {
		t.Fatal(err)
	}
	c.Unwatched(30)
	if got := c.NextSeq(); got != 31 {
		t.Errorf("NextSeq after 30 unwatched = %d, want 31", got)
	}
	if got := c.Stats().Published; got != 30 {
		t.Errorf("Published = %d, want 30", got)
	}
}
