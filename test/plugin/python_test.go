package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
)

// The Python consumer, which speaks the wire protocol from PROTOCOL.md with
// only the standard library and msgpack, receives and releases 300 frames
// of a 640x480 stream at 100 fps without a single stamp mismatch, and keeps
// up (docs/SDK.md): it receives at ≥ 95 fps, and the producer skips it for
// at most 5% of the frames. Those two are absolute, judged by the
// machine-busy rule.
func TestPythonConsumer(t *testing.T) {
	py := testutil.PythonWithMsgpack(t)
	p := startProducer(t, producerOpts{Width: 640, Height: 480, FPS: 100})
	script, err := filepath.Abs(filepath.Join("..", "..", "examples", "consumer-python", "consumer.py"))
	require.NoError(t, err)
	rel0 := p.Stream.Stats().Released

	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, script, "--socket", p.Addr, "--frames", "300", "--max-in-flight", "4")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cpu := testutil.StartCPUWindow(t)
	t0 := time.Now()
	require.NoError(t, testutil.StartOrphanless(cmd))
	runErr := cmd.Wait()
	elapsed := time.Since(t0)
	starved := cpu.Starved()
	t.Logf("%s (%v):\nstdout: %sstderr: %s", py, elapsed.Round(time.Millisecond), stdout.String(), stderr.String())
	require.NoError(t, runErr)

	var sum struct {
		Frames, Mismatches, Dropped uint64
		FPS                         float64
		FirstSeq                    uint64 `json:"first_seq"`
		LastSeq                     uint64 `json:"last_seq"`
		Session                     uint64
		Error                       string
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &sum), "the last stdout line is the JSON summary")
	require.Empty(t, sum.Error)
	require.GreaterOrEqual(t, sum.Frames, uint64(300))
	require.Zero(t, sum.Mismatches, "every frame's stamp matched its seq")
	require.NotZero(t, sum.Session)

	// The producer honoured the releases, not only the disconnect: with a
	// budget of 4 a consumer that did not release would have got 4 frames.
	// The last releases (up to the budget) may be unread when the consumer
	// closes: the producer reads them on its frame clock, and a send that
	// finds the socket closed (EPIPE) ends the session without reading
	// them (its leases end as released on close). Either way the session
	// is gone from the server.
	testutil.WaitUntil(t, waitTimeout, func() bool {
		st := p.Stream.Stats()
		return st.Released-rel0 >= 296 && st.Leases == 0 && len(p.Srv.Sessions()) == 0
	}, "the producer to read 296 releases, hold no lease and end the session")
	st := p.Stream.Stats()
	t.Logf("python: %d frames at %.1f fps, %d skipped by the producer; producer: %d leases released by the consumer, %d on close",
		sum.Frames, sum.FPS, sum.Dropped, st.Released-rel0, st.ReleasedOnClose)
	// Every frame the producer published while the consumer ran was either
	// received or counted as skipped.
	require.Equal(t, sum.LastSeq-sum.FirstSeq+1, sum.Frames+sum.Dropped, "received plus skipped covers the sequence numbers seen")

	skipped := float64(sum.Dropped) / float64(sum.Frames+sum.Dropped)
	testutil.SkipUnjudged(t, starved, "keeping up at 100 fps: %.1f fps received, %.1f%% skipped", sum.FPS, 100*skipped)
	require.GreaterOrEqual(t, sum.FPS, 95.0, "the Python consumer keeps up with 100 fps")
	require.LessOrEqual(t, skipped, 0.05, "the producer skipped the Python consumer for more than 5%% of the frames: it fell behind its budget")
}
