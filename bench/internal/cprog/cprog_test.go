package cprog

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
)

// TestCConsumer runs the C consumer against an in-process producer: it
// counts the frames of its window at the producer's rate and gives every
// lease back through the release ring, not in Release messages; the
// producer ends up holding no lease of it.
func TestCConsumer(t *testing.T) {
	bin, err := CConsumer(testutil.ModuleRoot(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := producertest.StartProducer(t, producertest.Options{FPS: 30})
	out, err := exec.Command(bin, "-socket", p.Addr, "-warmup", "300ms", "-duration", "2s").Output()
	if err != nil {
		t.Fatalf("cconsumer: %v: %s", err, stderr(err))
	}
	var r struct {
		Frames       float64 `json:"frames"`
		FPS          float64 `json:"fps"`
		CPU          float64 `json:"cpu_ns"`
		P50          float64 `json:"latency_p50_us"`
		RingReleases float64 `json:"ring_releases"`
		ReleaseMsgs  float64 `json:"release_msgs"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	t.Logf("%s", out)
	if r.FPS < 25 || r.FPS > 35 || r.Frames < 50 {
		t.Errorf("%v frames at %.1f fps in 2 s, want about 60 at 30", r.Frames, r.FPS)
	}
	if r.RingReleases < r.Frames || r.ReleaseMsgs != 0 {
		t.Errorf("%v leases released in the ring and %v in Release messages for %v frames: want every one in the ring",
			r.RingReleases, r.ReleaseMsgs, r.Frames)
	}
	if r.CPU <= 0 || r.P50 <= 0 {
		t.Errorf("no CPU time or latency measured: %s", out)
	}
	testutil.WaitUntil(t, 5*time.Second, func() bool { return p.Stream.Stats().Consumers == 0 }, "the consumer's session to end")
}

// TestCConsumerRefused: a producer that refuses the subscription (an
// unknown stream) makes the consumer fail, naming the reason.
func TestCConsumerRefused(t *testing.T) {
	bin, err := CConsumer(testutil.ModuleRoot(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := producertest.StartProducer(t, producertest.Options{})
	out, err := exec.Command(bin, "-socket", p.Addr, "-stream", "nosuch", "-duration", "1s").Output()
	if err == nil {
		t.Fatalf("cconsumer subscribed to stream nosuch: %s", out)
	}
	if msg := stderr(err); !strings.Contains(msg, "unknown_stream") {
		t.Errorf("stderr %q does not name the refusal", msg)
	}
}

// TestGstCount counts every buffer of a pipeline that ends, and refuses a
// description it cannot run with a message naming what was wrong.
func TestGstCount(t *testing.T) {
	if _, err := exec.LookPath("gst-launch-1.0"); err != nil {
		t.Skip("GStreamer is not installed (make test installs it)")
	}
	bin, err := GstCount(testutil.ModuleRoot(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-interval", "50", "videotestsrc", "num-buffers=45", "!", "fakesink").Output()
	if err != nil {
		t.Fatalf("gstcount: %v: %s", err, stderr(err))
	}
	m := regexp.MustCompile(`rendered: (\d+), dropped: 0\n$`).FindSubmatch(out)
	if m == nil || string(m[1]) != "45" {
		t.Errorf("last count in %q, want rendered: 45", out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"videotestsrc", "!", "nosuchelement"}, `no element "nosuchelement"`},
		{[]string{"videotestsrc", "!", "tee", "name=t", "!", "fakesink", "t.", "!", "fakesink"}, `2 sink elements`},
		{[]string{"videotestsrc"}, `0 sink elements`},
		{[]string{"-interval", "0", "videotestsrc", "!", "fakesink"}, `-interval 0`},
	} {
		_, err := exec.Command(bin, c.args...).Output()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(ee.Stderr), c.want) {
			t.Errorf("gstcount %v: %v, stderr %q: want exit status 2 and %q", c.args, err, stderr(err), c.want)
		} else if strings.Contains(string(ee.Stderr), "CRITICAL") {
			t.Errorf("gstcount %v misused GStreamer on the way out: %s", c.args, ee.Stderr)
		}
	}
}

// stderr is what a failed command wrote on its stderr (exec.Cmd.Output
// keeps it in the *exec.ExitError), or the error's text.
func stderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return fmt.Sprint(err)
}
