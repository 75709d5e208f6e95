package fairness

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/sysinfo"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/sdk"
)

// window is how long each attack runs while the healthy consumer is
// measured, as the issue that asked for these tests ran them.
const window = 20 * time.Second

// fps is the synthetic source's rate.
const fps = 30

var binDir string

func TestMain(m *testing.M) {
	testutil.RunHelper(roles())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	dir, err := testutil.BuildToTemp(ctx, "github.com/framehub/framehub/cmd/framehub-producer")
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fairness: build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
}

// producer is a framehub-producer process serving the synthetic source
// with the default flags plus extra.
type producer struct {
	d     *testutil.Daemon
	sock  string
	admin string
}

func startProducer(t *testing.T, extra ...string) *producer {
	t.Helper()
	dir := testutil.ShortDir(t)
	p := &producer{sock: filepath.Join(dir, "p.sock"), admin: filepath.Join(dir, "admin.sock")}
	args := append([]string{"-source", "synthetic", "-fps", fmt.Sprint(fps), "-width", "640", "-height", "360",
		"-socket", p.sock, "-admin", "unix:" + p.admin}, extra...)
	p.d = testutil.StartDaemon(t, "framehub-producer", exec.Command(filepath.Join(binDir, "framehub-producer"), args...),
		30*time.Second, func(line string) bool { return strings.Contains(line, `msg="synthetic source"`) })
	return p
}

// published reads the producer's frames_total for the raw stream.
func (p *producer) published(t *testing.T) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, body, err := testutil.HTTPDo(ctx, "unix:"+p.admin, "GET", "/metrics", nil)
	require.NoError(t, err)
	require.Equal(t, 200, code)
	m, err := testutil.ParseMetrics(body)
	require.NoError(t, err)
	return m[`framehub_producer_frames_total{stream="raw"}`]
}

// child is a role process (see roles_test.go) and its reports.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu      sync.Mutex
	reports []report
	changed chan struct{}
	done    chan struct{}
}

func startRole(t *testing.T, role string, p *producer, env ...string) *child {
	t.Helper()
	cmd := testutil.HelperCommand(role, append([]string{"FH_SOCKET=" + p.sock}, env...)...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr testutil.LockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, testutil.StartOrphanless(cmd))
	c := &child{cmd: cmd, stdin: stdin, changed: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var r report
			if json.Unmarshal(sc.Bytes(), &r) != nil {
				continue
			}
			c.mu.Lock()
			c.reports = append(c.reports, r)
			c.mu.Unlock()
			select {
			case c.changed <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", role, testutil.Tail(stderr.String(), 3000))
		}
	})
	return c
}

// wait returns the first report matching ok, failing the test after
// timeout.
func (c *child) wait(t *testing.T, what string, timeout time.Duration, ok func(report) bool) report {
	t.Helper()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		for _, r := range c.reports {
			if r.Event == "error" {
				c.mu.Unlock()
				t.Fatalf("%s: %s failed: %s", what, r.Role, r.Err)
			}
			if ok(r) {
				c.mu.Unlock()
				return r
			}
		}
		c.mu.Unlock()
		select {
		case <-c.changed:
		case <-c.done:
			t.Fatalf("%s: the child exited first", what)
		case <-deadline:
			t.Fatalf("%s: not within %v", what, timeout)
		}
	}
}

// all returns the reports matching ok so far.
func (c *child) all(ok func(report) bool) []report {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []report
	for _, r := range c.reports {
		if ok(r) {
			out = append(out, r)
		}
	}
	return out
}

// latest returns the healthy consumer's newest progress report.
func (c *child) latest(t *testing.T) report {
	t.Helper()
	prog := c.all(func(r report) bool { return r.Event == "progress" })
	require.NotEmpty(t, prog)
	return prog[len(prog)-1]
}

// measure runs the healthy consumer alongside an attack for the window and
// judges it: at least 29.5 fps, or, when the machine had no CPU to spare,
// at least 99% of the frames the source published meanwhile (the source
// itself must then still be judged by its own rate: a frozen producer
// would score 1.0); no stamp mismatch and no frame lost.
func measure(t *testing.T, p *producer, h *child, attack string) {
	t.Helper()
	win := testutil.StartCPUWindow(t)
	pub0, h0, t0 := p.published(t), h.latest(t), time.Now()
	deadline := t0.Add(window)
	for time.Now().Before(deadline) {
		select {
		case <-h.done:
			t.Fatalf("%s: the healthy consumer exited", attack)
		case <-time.After(time.Until(deadline)):
		}
	}
	// The newest progress report is at most 500 ms old: wait for one from
	// after the window's end.
	end := time.Now().UnixNano()
	h1 := h.wait(t, "a progress report after the window", 5*time.Second, func(r report) bool { return r.Event == "progress" && r.MonoNS >= end })
	pub1 := p.published(t)
	secs := float64(h1.MonoNS-h0.MonoNS) / 1e9
	got, published := float64(h1.Frames-h0.Frames), pub1-pub0
	rate := got / secs
	t.Logf("%s: healthy consumer %.0f frames in %.1f s (%.2f fps), source published %.0f (%.2f fps); mismatches %d, dropped %d",
		attack, got, secs, rate, published, published/secs, h1.Mismatches, h1.Dropped-h0.Dropped)
	require.Zero(t, h1.Mismatches, "%s: stamp mismatches", attack)
	if why := win.Starved(); why != "" {
		// The healthy consumer may then fall behind its own budget (a skip
		// it owes to the machine, not to the attacker).
		t.Logf("%s: the machine had no CPU to spare (%s): judging the healthy consumer against the source's own rate", attack, why)
		require.GreaterOrEqual(t, got, 0.99*published-1, "%s: healthy consumer got %.0f of %.0f frames", attack, got, published)
		return
	}
	require.Zero(t, h1.Dropped-h0.Dropped, "%s: frames the healthy consumer lost", attack)
	require.GreaterOrEqual(t, published/secs, 0.95*fps, "%s: the source itself fell behind", attack)
	require.GreaterOrEqual(t, rate, 29.5, "%s: healthy consumer rate", attack)
}

func startHealthy(t *testing.T, p *producer) *child {
	t.Helper()
	h := startRole(t, "healthy", p)
	h.wait(t, "the healthy consumer's first frames", 15*time.Second, func(r report) bool { return r.Event == "progress" && r.Frames >= fps })
	return h
}

// One consumer asks for 2^32-1 frames held 2^32-1 ms and never releases
// what it gets (it used to be granted the whole pool: the healthy consumer
// got 0 frames in 15 s).
func TestGreedyHolder(t *testing.T) {
	p := startProducer(t)
	h := startHealthy(t, p)
	g := startRole(t, "greedy", p)
	w := g.wait(t, "the greedy consumer's Welcome", 10*time.Second, func(r report) bool { return r.Event == "welcome" })
	t.Logf("greedy consumer granted budget %d, max_hold %d ms", w.Budget, w.HoldMS)
	require.LessOrEqual(t, w.Budget, uint32(8), "max-in-flight caps it")
	g.wait(t, "the greedy consumer to hold its budget", 10*time.Second, func(r report) bool { return r.Event == "progress" && r.Frames >= uint64(w.Budget) })
	measure(t, p, h, "greedy holder")
}

// Eight consumers with the default budget hold every frame they get,
// subscribing a few frames apart, and subscribe again when evicted (it used
// to take the whole pool: the healthy consumer got 0.0 fps).
func TestManyHolders(t *testing.T) {
	p := startProducer(t)
	h := startHealthy(t, p)
	var holders []*child
	for i := range 8 {
		holders = append(holders, startRole(t, "holder", p, fmt.Sprintf("FH_NAME=holder%d", i)))
		time.Sleep(100 * time.Millisecond) // a few frames apart
	}
	measure(t, p, h, "8 holders")
	welcomed, refused := 0, 0
	for _, c := range holders {
		welcomed += len(c.all(func(r report) bool { return r.Event == "welcome" }))
		refused += len(c.all(func(r report) bool { return r.Event == "reject" && r.Code == "no_capacity" }))
	}
	t.Logf("holders: %d subscriptions, %d refused for capacity", welcomed, refused)
	require.Positive(t, refused, "the pool cannot back eight budgets of 4 beside the healthy consumer's")
}

// A consumer holds its budget, is evicted at max_hold (3 s), subscribes
// again and repeats (the healthy consumer used to drop to 10.2 fps).
func TestHoldEvictReconnect(t *testing.T) {
	p := startProducer(t, "-max-hold", "3s")
	h := startHealthy(t, p)
	l := startRole(t, "holder", p, "FH_NAME=looper", "FH_BUDGET=8", "FH_HOLD_MS=60000")
	measure(t, p, h, "hold/evict/reconnect")
	var budgets []uint32
	for _, r := range l.all(func(r report) bool { return r.Event == "welcome" }) {
		budgets = append(budgets, r.Budget)
	}
	evictions := len(l.all(func(r report) bool { return r.Event == "bye" && r.Code == "max_hold" }))
	t.Logf("looper: budgets %v, %d evictions", budgets, evictions)
	require.GreaterOrEqual(t, evictions, 4)
	require.GreaterOrEqual(t, len(budgets), 4)
	for i := 1; i < len(budgets); i++ {
		require.LessOrEqual(t, budgets[i], max(1, budgets[i-1]/2), "each eviction halves the next budget: %v", budgets)
	}
}

// One process keeps 16 connections open without a Hello, reopening each as
// soon as it is closed (with -max-connections 8 a legitimate consumer used
// to be admitted 0 of 40 times): another process is admitted within 1 s,
// every time.
func TestSilentConnections(t *testing.T) {
	p := startProducer(t, "-max-connections", "8")
	s := startRole(t, "silent", p, "FH_CONNS=16")
	s.wait(t, "the silent process to hold its connections", 10*time.Second, func(r report) bool { return r.Event == "progress" && r.Sent >= 16 })
	var worst time.Duration
	tk := time.NewTicker(250 * time.Millisecond) // 10 s: the silent connections cycle through their Hello deadline
	defer tk.Stop()
	for i := range 40 {
		<-tk.C
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		t0 := time.Now()
		c, err := sdk.Dial(ctx, p.sock, sdk.Options{Name: "legit", MaxInFlight: 2, Logger: quietLogger()})
		took := time.Since(t0)
		cancel()
		require.NoError(t, err, "attempt %d: a legitimate consumer was not admitted within 1 s", i)
		worst = max(worst, took)
		require.NoError(t, c.Close())
	}
	last := s.all(func(r report) bool { return r.Event == "progress" })
	require.NotEmpty(t, last)
	t.Logf("40 of 40 admitted, slowest in %v; the silent process opened %d connections, %d rejected at once, %d closed for no Hello",
		worst.Round(time.Microsecond), last[len(last)-1].Sent, last[len(last)-1].Frames, last[len(last)-1].Dropped)
	require.Positive(t, last[len(last)-1].Frames, "connections beyond the per-process allowance are rejected at once")
}

// A latest-policy session floods Pings (it used to keep a producer core at
// 92%): its session is closed with a reason, and the producer's CPU stays
// near idle while the healthy consumer keeps its rate.
func TestPingFlood(t *testing.T) {
	p := startProducer(t)
	h := startHealthy(t, p)
	pid := p.d.Cmd.Process.Pid
	cpu := func() time.Duration {
		v, err := sysinfo.ProcCPU(pid)
		require.NoError(t, err)
		return time.Duration(v)
	}
	c0, t0 := cpu(), time.Now()
	time.Sleep(5 * time.Second)
	idle := float64(cpu()-c0) / float64(time.Since(t0))
	f := startRole(t, "pinger", p)
	c1, t1 := cpu(), time.Now()
	bye := f.wait(t, "the flooder's Bye", 10*time.Second, func(r report) bool { return r.Event == "bye" })
	t.Logf("flooder closed after %d Pings: %s: %s", bye.Sent, bye.Code, bye.Reason)
	require.Equal(t, "rate_limit", bye.Code)
	measure(t, p, h, "ping flood")
	flood := float64(cpu()-c1) / float64(time.Since(t1))
	t.Logf("producer CPU: %.2f%% of a core idle (healthy consumer only), %.2f%% with the flooder", 100*idle, 100*flood)
	require.LessOrEqual(t, flood, idle+0.03, "the flood costs the producer more than 3%% of a core")
}
