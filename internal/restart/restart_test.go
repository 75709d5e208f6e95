package restart

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
)

// recorder is the owner's side of a test: the hooks it got, in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, a...))
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func (r *recorder) hooks() Hooks {
	return Hooks{
		State:   func(s State) { r.add("state %s", s) },
		Exited:  func(err error) { r.add("exited %v", err) },
		Crashed: func() { r.add("crashed") },
		Restart: func() { r.add("restart") },
	}
}

// runs returns a run function that ends each run with the next of exits
// (after marking the status as its owner would), and blocks the run after
// the last one until ctx is done.
func runs(p **Process, exits ...Exit) func(ctx context.Context) (Exit, error) {
	n := 0
	return func(ctx context.Context) (Exit, error) {
		(*p).Update(func(st *Status) { st.PID = 1000 + n })
		if n < len(exits) {
			n++
			return exits[n-1], nil
		}
		(*p).Set(Running, "")
		<-ctx.Done()
		return Exit{Desc: "killed by SIGTERM"}, nil
	}
}

var crash = Exit{Err: errors.New("exit status 2"), Desc: "exit status 2", Cause: "panic: boom"}

// TestBackoffAndStability: restarts wait BackoffMin, then twice as long
// each time up to BackoffMax; a run that lasted StableAfter starts the
// wait and the crash count over.
func TestBackoffAndStability(t *testing.T) {
	var logs testutil.LockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var rec recorder
	var p *Process
	p = New(Config{Name: "flaky", Policy: Policy{BackoffMin: time.Millisecond, BackoffMax: 4 * time.Millisecond, StableAfter: time.Hour},
		Log: log, Hooks: rec.hooks(), Initial: Starting})
	require.Equal(t, Starting, p.Status().State)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, runs(&p, crash, crash, crash, crash, crash))
	}()
	testutil.WaitUntil(t, 10*time.Second, func() bool { return p.Status().State == Running }, "the sixth run")
	st := p.Status()
	require.Equal(t, 6, st.Starts)
	require.Equal(t, 5, st.Restarts)
	require.Equal(t, 5, st.Crashes)
	require.Equal(t, 1005, st.PID)
	require.Equal(t, "exit status 2", st.LastExit)
	require.Equal(t, "panic: boom", st.LastError)
	var waits []string
	for line := range strings.Lines(logs.String()) {
		if _, rest, ok := strings.Cut(line, "restart_in="); ok {
			waits = append(waits, strings.Fields(rest)[0])
		}
	}
	require.Equal(t, []string{"1ms", "2ms", "4ms", "4ms", "4ms"}, waits)
	cancel()
	<-done
	st = p.Status()
	require.Equal(t, Stopped, st.State)
	require.Zero(t, st.PID)
	require.Equal(t, "killed by SIGTERM", st.LastExit)

	ev := rec.all()
	// Starting already (Initial): the first run changes no state.
	require.Equal(t, []string{"exited exit status 2", "crashed", "state backoff", "restart", "state starting", "exited exit status 2"}, ev[:6])
	require.Equal(t, []string{"exited <nil>", "state stopped"}, ev[len(ev)-2:])

	// A stable run: the next wait is the minimum again, the crash count 0.
	p = New(Config{Name: "steady", Policy: Policy{BackoffMin: time.Millisecond, BackoffMax: time.Second, StableAfter: 0}, Log: log})
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, runs(&p, crash, crash, crash))
	}()
	testutil.WaitUntil(t, 10*time.Second, func() bool { return p.Status().State == Running }, "the fourth run")
	require.Equal(t, 1, p.Status().Crashes, "each run was stable: the crash count starts over")
	cancel()
	<-done
}

// TestCrashLoop: MaxCrashes short runs in a row and the process Failed,
// saying why.
func TestCrashLoop(t *testing.T) {
	var p *Process
	p = New(Config{Name: "flaky", Policy: Policy{BackoffMin: time.Millisecond, BackoffMax: time.Millisecond, StableAfter: time.Hour, MaxCrashes: 3},
		Log: testutil.Logger(t, slog.LevelWarn)})
	p.Run(context.Background(), runs(&p, crash, crash, crash, crash))
	st := p.Status()
	require.Equal(t, Failed, st.State)
	require.Equal(t, 3, st.Crashes)
	require.Equal(t, 3, st.Starts)
	require.Equal(t, "crash loop: flaky exited 3 times in a row, each within 1h0m0s of starting (last: exit status 2: panic: boom); giving up", st.Error)
}

// TestPolicies: never restarts after any exit, on-failure after a failed
// one only; a run that cannot start fails at once.
func TestPolicies(t *testing.T) {
	clean := Exit{Desc: "exit status 0"}
	for _, tc := range []struct {
		restart string
		exits   []Exit
		starts  int
	}{
		{Never, []Exit{crash}, 1},
		{OnFailure, []Exit{clean}, 1},
		{OnFailure, []Exit{crash, crash, clean}, 3},
	} {
		var p *Process
		p = New(Config{Name: "x", Policy: Policy{Restart: tc.restart, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond},
			Log: testutil.Logger(t, slog.LevelWarn)})
		p.Run(context.Background(), runs(&p, tc.exits...))
		st := p.Status()
		require.Equal(t, Stopped, st.State, tc.restart)
		require.Equal(t, tc.starts, st.Starts, tc.restart)
	}
	p := New(Config{Name: "x", Log: testutil.Logger(t, slog.LevelError+1)})
	p.Run(context.Background(), func(context.Context) (Exit, error) { return Exit{}, errors.New("fork/exec /nope: no such file") })
	require.Equal(t, Failed, p.Status().State)
	require.Equal(t, "cannot start: fork/exec /nope: no such file", p.Status().Error)
}

// TestStopDuringBackoff: a process waiting for its restart is Stopped when
// its context ends, without another run.
func TestStopDuringBackoff(t *testing.T) {
	var p *Process
	p = New(Config{Name: "x", Policy: Policy{BackoffMin: time.Hour, BackoffMax: time.Hour}, Log: testutil.Logger(t, slog.LevelError)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, runs(&p, crash))
	}()
	testutil.WaitUntil(t, 10*time.Second, func() bool { return p.Status().State == Backoff }, "the back-off")
	require.Equal(t, "its restart in 1h0m0s", p.Status().WaitingFor)
	cancel()
	<-done
	require.Equal(t, Stopped, p.Status().State)
	require.Equal(t, 1, p.Status().Starts)
}

// TestStartingSaysForWhat: every change a notified owner sees that makes
// the process Starting carries StartingFor with it, on the first run and
// after a restart; a later state clears it.
func TestStartingSaysForWhat(t *testing.T) {
	var p *Process
	var mu sync.Mutex
	var bad []string
	notify := func() {
		st := p.Status()
		if st.State == Starting && st.WaitingFor != "its ready socket" {
			mu.Lock()
			bad = append(bad, fmt.Sprintf("starting, waiting for %q", st.WaitingFor))
			mu.Unlock()
		}
	}
	p = New(Config{Name: "x", Policy: Policy{BackoffMin: time.Millisecond, BackoffMax: time.Millisecond},
		Log: testutil.Logger(t, slog.LevelError), Notify: notify, StartingFor: "its ready socket"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var seen []string
	go func() {
		defer close(done)
		run := runs(&p, crash)
		p.Run(ctx, func(ctx context.Context) (Exit, error) {
			st := p.Status()
			seen = append(seen, string(st.State)+": "+st.WaitingFor)
			return run(ctx)
		})
	}()
	testutil.WaitUntil(t, 10*time.Second, func() bool { return p.Status().State == Running }, "the second run")
	require.Equal(t, "", p.Status().WaitingFor)
	cancel()
	<-done
	require.Equal(t, []string{"starting: its ready socket", "starting: its ready socket"}, seen)
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, bad)
}

// TestReplacement: a process that replaces another inherits its restarts
// (plus this one) and its last exit; every change of status notifies.
func TestReplacement(t *testing.T) {
	notes := 0
	old := New(Config{Name: "x"})
	old.Update(func(st *Status) { st.Restarts, st.LastExit, st.LastError = 2, "exit status 1", "bad flag" })
	p := New(Config{Name: "x", Prev: old, Notify: func() { notes++ }})
	st := p.Status()
	require.Equal(t, 3, st.Restarts)
	require.Equal(t, "exit status 1", st.LastExit)
	require.Equal(t, "bad flag", st.LastError)
	require.Equal(t, Waiting, st.State)
	since := st.Since
	p.Set(Waiting, "producer")
	require.Equal(t, since, p.Status().Since, "Since changes with the state only")
	p.Set(Ready, "")
	require.Equal(t, 2, notes)
}

// TestLineWriter: lines are relayed whole whatever the writes' sizes, a
// carriage return before the newline is dropped, a line without its
// newline waits for Flush, and one longer than MaxLine comes in pieces.
func TestLineWriter(t *testing.T) {
	var got []string
	w := NewLineWriter(func(b []byte) { got = append(got, string(b)) })
	for _, s := range []string{"first li", "ne\nsecond\r\n", "\nthird", " and last"} {
		n, err := w.Write([]byte(s))
		require.NoError(t, err)
		require.Equal(t, len(s), n)
	}
	require.Equal(t, []string{"first line", "second", ""}, got)
	w.Flush()
	w.Flush()
	require.Equal(t, []string{"first line", "second", "", "third and last"}, got)

	got = nil
	long := strings.Repeat("x", MaxLine+10)
	_, err := w.Write([]byte(long))
	require.NoError(t, err)
	require.Equal(t, []string{long}, got, "a line of MaxLine bytes or more is relayed at once")
}
