package lease

import (
	"flag"
	"math/rand/v2"
	"testing"

	"github.com/framehub/framehub/internal/modeltest"
)

var replaySeed = flag.Int64("lease.seed", -1, "run TestProperty for this seed only")

// TestProperty drives table and model with 200 seeds x 2,000 random steps
// (20 seeds with -short), in parallel shards. A failure names the seed; replay
// it with: go test -run TestProperty ./lease -args -lease.seed=N
func TestProperty(t *testing.T) {
	seeds := uint64(200)
	if testing.Short() {
		seeds = 20
	}
	seen := modeltest.RunSeeds(t, seeds, *replaySeed, func(seed uint64) (map[string]int, error) {
		h := newHarness(newRandSource(seed))
		return h.seen, h.run(propertySteps)
	})
	if seen == nil || *replaySeed >= 0 {
		return
	}
	// The driver must actually reach every outcome, not just errors.
	for _, k := range []string{"ok", "free", "evict",
		ErrUnknownConsumer.Error(), ErrDuplicateConsumer.Error(), ErrInvalidLimits.Error(),
		ErrUnknownFrame.Error(), ErrDuplicateFrame.Error(), ErrBudget.Error(),
		ErrUnknownLease.Error(), ErrNotHeld.Error()} {
		if seen[k] < int(seeds) {
			t.Errorf("driver too weak: outcome %q seen %d times over %d seeds", k, seen[k], seeds)
		}
	}
	t.Logf("outcomes over %d seeds x %d steps: %v", seeds, propertySteps, seen)
}

const propertySteps = 2000

func newRandSource(seed uint64) modeltest.Source {
	return modeltest.Rand(seed, 0x9e3779b97f4a7c15)
}

// fuzzMaxSteps bounds the steps of one fuzz input.
const fuzzMaxSteps = 512

// FuzzTable interprets the fuzz input as a sequence of driver choices (one
// byte each, at most fuzzMaxSteps steps) and applies the same model checks as
// TestProperty.
func FuzzTable(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 3, 5, 15, 0, 60, 1, 1, 2, 80, 1, 1, 1, 45, 1, 1, 99, 29})
	f.Add([]byte("framehub lease table: grant, release, hold, unhold, evict"))
	for i := range uint64(4) { // long random inputs: about fuzzMaxSteps steps each
		r := rand.New(rand.NewPCG(i, 2))
		seed := make([]byte, 4*fuzzMaxSteps)
		for j := range seed {
			seed[j] = byte(r.UintN(256))
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxSteps*4 {
			t.Skip("input longer than useful") // keeps execs (and minimization) fast
		}
		h := newHarness(modeltest.Bytes(data))
		if err := h.run(fuzzMaxSteps); err != nil {
			t.Fatal(err)
		}
	})
}
