// Package modeltest drives the model-based tests of framehub's pure-logic
// packages (lease, producer/fanout): their drivers apply random operations
// to the real thing and to a plain model and compare the two after every
// step. This package gives a driver its choices — a seeded PRNG, or fuzz
// bytes — and runs many seeds in parallel shards. It is for tests only.
package modeltest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// Source yields a driver's choices.
type Source interface {
	// Intn returns a choice in [0, n); n must be ≥ 1.
	Intn(n int) int
	// More reports whether choices remain (always, for a PRNG).
	More() bool
}

type randSource struct{ r *rand.Rand }

func (s randSource) Intn(n int) int { return s.r.IntN(n) }
func (s randSource) More() bool     { return true }

// Rand returns an endless source seeded with seed; stream tells apart the
// sources of different packages with the same seeds.
func Rand(seed, stream uint64) Source {
	return randSource{rand.New(rand.NewPCG(seed, stream))}
}

type byteSource struct {
	data []byte
	pos  int
}

func (s *byteSource) Intn(n int) int {
	if s.pos >= len(s.data) {
		return 0
	}
	b := int(s.data[s.pos])
	s.pos++
	return b % n
}

func (s *byteSource) More() bool { return s.pos < len(s.data) }

// Bytes returns a source reading one byte of data per choice (modulo n),
// for fuzz targets; past the end every choice is 0 and More is false.
func Bytes(data []byte) Source { return &byteSource{data: data} }

// Shards is how many parallel subtests RunSeeds splits its seeds into.
const Shards = 4

// RunSeeds calls run for seeds 0..seeds-1, split over Shards parallel
// subtests, and returns the outcome counts the runs returned, summed (nil
// when a run failed: the test then fails naming the seed). When replay is
// ≥ 0 only that seed runs. run must be safe to call from several
// goroutines for different seeds.
func RunSeeds(t *testing.T, seeds uint64, replay int64, run func(seed uint64) (map[string]int, error)) map[string]int {
	t.Helper()
	if replay >= 0 {
		seen, err := run(uint64(replay))
		if err != nil {
			t.Fatalf("seed %d: %v", replay, err)
		}
		return seen
	}
	var mu sync.Mutex
	seen := make(map[string]int)
	t.Run("shards", func(t *testing.T) {
		for shard := range uint64(Shards) {
			t.Run(fmt.Sprintf("seeds%%%d=%d", Shards, shard), func(t *testing.T) {
				t.Parallel()
				for seed := shard; seed < seeds; seed += Shards {
					s, err := run(seed)
					if err != nil {
						t.Fatalf("seed %d: %v", seed, err)
					}
					mu.Lock()
					for k, v := range s {
						seen[k] += v
					}
					mu.Unlock()
				}
			})
		}
	})
	if t.Failed() {
		return nil
	}
	return seen
}
