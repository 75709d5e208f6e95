// Package floor builds and runs bench/floor/floor.c: the machine's floor for
// framehub's transport, a C program doing the same SEQPACKET + SCM_RIGHTS
// round trips with nothing else, so that reports compare framehub with it
// measured in the same run.
package floor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/framehub/framehub/bench/internal/cprog"
)

// Build compiles bench/floor/floor.c (relative to root, the module's root)
// with gcc into dir and returns the binary's path.
func Build(root, dir string) (string, error) {
	return cprog.Build(root, dir, "floor", []string{"bench/floor/floor.c"})
}

// Run runs the floor binary with args ("paced", messages, interval_ms or
// "rtt", round trips) and returns the numbers of the JSON it prints.
func Run(bin string, args ...string) (map[string]float64, error) {
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return nil, fmt.Errorf("floor %v: %w: %s", args, err, bytes.TrimSpace(ee.Stderr))
		}
		return nil, fmt.Errorf("floor %v: %w", args, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("floor %v: output %q: %w", args, out, err)
	}
	res := map[string]float64{}
	for k, v := range m {
		if f, ok := v.(float64); ok {
			res[k] = f
		}
	}
	return res, nil
}

// Paced is the floor at a camera's pace: one round trip every 33 ms for 15 s.
func Paced(bin string) (map[string]float64, error) { return Run(bin, "paced", "450", "33") }

// RTT is the floor back to back: 300,000 round trips as fast as they go.
func RTT(bin string) (map[string]float64, error) { return Run(bin, "rtt", "300000") }

// BuildGoConsumer builds bench/floor/goconsumer (relative to root) into dir:
// the floor of a Go consumer, for Fanout.
func BuildGoConsumer(root, dir string) (string, error) {
	bin := filepath.Join(dir, "floor-goconsumer")
	cmd := exec.Command("go", "build", "-o", bin, "./bench/floor/goconsumer")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build bench/floor/goconsumer: %w: %s", err, out)
	}
	return bin, nil
}

// Fanout is the floor of a producer fanning out to consumers at a camera's
// pace: 450 frames, one every 33 ms (after a second of warm-up), each sent to
// every one of consumers that only receive it and release it in shared
// memory. goConsumer is the Go consumer to run ("" for consumers in C). The
// slope of its total CPU per frame against the number of consumers is the
// least one more consumer can cost on this machine with a transport that
// wakes each consumer once per frame.
func Fanout(bin string, consumers int, goConsumer string) (map[string]float64, error) {
	args := []string{"fanout", "450", "33", strconv.Itoa(consumers)}
	if goConsumer != "" {
		args = append(args, goConsumer)
	}
	return Run(bin, args...)
}
