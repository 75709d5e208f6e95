package floor

import (
	"strconv"
	"testing"

	"github.com/framehub/framehub/internal/testutil"
)

// TestFanout runs the fan-out floor briefly with consumers in C and in Go:
// every frame reaches every consumer and is released, and the CPU figures
// are there.
func TestFanout(t *testing.T) {
	dir := t.TempDir()
	bin, err := Build(testutil.ModuleRoot(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	goCons, err := BuildGoConsumer(testutil.ModuleRoot(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	const frames, ms, k = 20, 20, 2
	warm := 1000/ms + 1 // floor.c's warm-up
	for _, c := range []string{"", goCons} {
		args := []string{"fanout", strconv.Itoa(frames), strconv.Itoa(ms), strconv.Itoa(k)}
		if c != "" {
			args = append(args, c)
		}
		m, err := Run(bin, args...)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m["released"], float64((frames+warm)*k); got != want {
			t.Errorf("consumer %q: %v released, want %v", c, got, want)
		}
		if m["consumers"] != k || m["frames"] != frames {
			t.Errorf("consumer %q: %v", c, m)
		}
		if m["producer_cpu_us_per_frame"] <= 0 || m["consumer_cpu_us_per_frame"] <= 0 {
			t.Errorf("consumer %q: no CPU measured: %v", c, m)
		}
	}
}
