package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/restart"
)

// State is where a child is in its life: the restart engine's states
// (internal/restart), of which the supervisor uses these.
type State = restart.State

// Child states.
const (
	StateWaiting  = restart.Waiting  // for the processes it starts after
	StateStarting = restart.Starting // started, not ready yet
	StateReady    = restart.Ready    // running (and its ready socket accepts)
	StateBackoff  = restart.Backoff  // crashed, waiting to restart
	StateStopped  = restart.Stopped  // exited and not restarted (policy), or stopped by the supervisor
	StateFailed   = restart.Failed   // crash loop, or cannot start: given up
)

// ChildStatus describes one child for /status and framehubctl.
type ChildStatus struct {
	Name     string    `json:"name"`
	PID      int       `json:"pid,omitempty"`
	State    State     `json:"state"`
	Since    time.Time `json:"since"`            // when it entered State
	Started  time.Time `json:"started,omitzero"` // when the current run started
	Restarts int       `json:"restarts"`         // restarts since the supervisor started (crashes and config changes)
	Crashes  int       `json:"crashes"`          // consecutive short runs
	// LastExit is how the last run ended ("exit status 2", "killed by
	// SIGKILL"), LastError the error line it wrote before a failed exit
	// (a panic, a bad flag, its last error log line), ExitedAt when.
	LastExit  string    `json:"last_exit,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	ExitedAt  time.Time `json:"exited_at,omitzero"`
	// WaitingFor says what a waiting, starting or backing-off child waits
	// for: the processes it starts after, its ready socket, its restart.
	WaitingFor string `json:"waiting_for,omitempty"`
	// Error is why the supervisor gave up on it (state failed).
	Error string `json:"error,omitempty"`
	Admin string `json:"admin,omitempty"`
	// Camera is the camera the process belongs to (its producer, or an
	// instance of a per-camera process); "" for the group's processes.
	Camera string `json:"camera,omitempty"`
}

// child is one process entry of the config being supervised. A reload
// that changes the entry replaces the child (keeping its logs and restart
// count).
type child struct {
	p       Process
	bin     string
	logs    *logRing
	proc    *restart.Process // its status and restart loop
	readyCh chan struct{}    // closed the first time the child is ready
	done    chan struct{}    // closed when its supervise loop returned
	stop    context.CancelFunc

	readyOnce sync.Once
}

// notifier tells waiters that some child's status changed.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

// watch returns a channel closed at the next notify.
func (n *notifier) watch() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.ch)
	n.ch = make(chan struct{})
}

// newChild returns the child of entry p, whose binary resolved to bin. A
// child it replaces (prev, or nil) passes on its logs and history.
func (s *Supervisor) newChild(p Process, bin string, prev *child) *child {
	c := &child{p: p, bin: bin, readyCh: make(chan struct{}), done: make(chan struct{})}
	var prevProc *restart.Process
	if prev != nil {
		c.logs, prevProc = prev.logs, prev.proc
	} else {
		c.logs = newLogRing(2000)
	}
	r := p.Restart
	c.proc = restart.New(restart.Config{
		Name: p.Name,
		Policy: restart.Policy{Restart: r.Policy, BackoffMin: r.BackoffMin, BackoffMax: r.BackoffMax,
			StableAfter: r.StableAfter, MaxCrashes: r.MaxCrashes},
		Log: s.log.With("process", p.Name),
		Hooks: restart.Hooks{
			State:   func(st State) { s.metrics.state(p.Name, st) },
			Exited:  func(err error) { s.metrics.exited(p.Name, err) },
			Crashed: func() { s.metrics.crashes.WithLabelValues(p.Name).Inc() },
			Restart: func() { s.metrics.restarts.WithLabelValues(p.Name).Inc() },
		},
		Notify:      s.note.notify,
		Prev:        prevProc,
		StartingFor: startingFor(p),
	})
	return c
}

func (c *child) status() ChildStatus {
	st := c.proc.Status()
	return ChildStatus{
		Name: c.p.Name, PID: st.PID, State: st.State, Since: st.Since, Started: st.Started, Restarts: st.Restarts,
		Crashes: st.Crashes, LastExit: st.LastExit, LastError: st.LastError, ExitedAt: st.ExitedAt,
		WaitingFor: st.WaitingFor, Error: st.Error, Admin: c.p.Admin, Camera: c.p.Camera,
	}
}

func (c *child) ready() bool {
	select {
	case <-c.readyCh:
		return true
	default:
		return false
	}
}

// stopAndWait stops the child's process (SIGTERM, SIGKILL after the grace
// period) and its supervise loop, and waits for both.
func (c *child) stopAndWait() {
	c.stop()
	<-c.done
}

// startingFor is what a starting run of p waits for: its ready socket,
// when it has one.
func startingFor(p Process) string {
	if p.ReadySocket == "" {
		return ""
	}
	return fmt.Sprintf("its ready socket %s to accept connections", p.ReadySocket)
}

// describe says what waiting for c means now, for a dependent's
// WaitingFor: "producer (starting: /run/framehub/framehub.sock does not
// accept connections yet)".
func (c *child) describe() string {
	st := c.status()
	why := string(st.State)
	switch st.State {
	case StateStarting:
		if c.p.ReadySocket != "" {
			why = fmt.Sprintf("starting: %s does not accept connections yet", c.p.ReadySocket)
		}
	case StateWaiting:
		if st.WaitingFor != "" {
			why = "waiting for " + st.WaitingFor
		}
	case StateBackoff:
		why = "crashed, restarting"
	case StateFailed:
		why = "failed: " + st.Error
	}
	return fmt.Sprintf("%s (%s)", c.p.Name, why)
}

// supervise runs one child, once the processes it starts after are ready,
// until stopCtx is cancelled (the group stops, or a reload replaces or
// removes it) or its restart policy gives up.
func (s *Supervisor) supervise(stopCtx context.Context, c *child) {
	if !s.awaitDependencies(stopCtx, c) {
		c.proc.Set(StateStopped, "")
		return
	}
	log := s.log.With("process", c.p.Name)
	c.proc.Run(stopCtx, func(ctx context.Context) (restart.Exit, error) { return s.runOnce(ctx, c, log) })
}

// runOnce starts the child's process, marks it ready once its ready socket
// accepts, and returns how it ended; when ctx is done it stops it first.
// Its error says the binary cannot be started at all.
func (s *Supervisor) runOnce(ctx context.Context, c *child, log *slog.Logger) (restart.Exit, error) {
	if err := prepareCamera(c.p); err != nil {
		return restart.Exit{}, err
	}
	cmd, out := s.command(c)
	res := make(chan error, 1)
	// Marked before the spawn: a child that fails at once may have written
	// its error before the spawn request returns.
	mark := c.logs.mark()
	select {
	case s.spawns <- spawnReq{cmd: cmd, res: res}:
	case <-ctx.Done():
		return restart.Exit{}, ctx.Err() // stopped before it started
	}
	if err := <-res; err != nil {
		return restart.Exit{}, err
	}
	pid := cmd.Process.Pid
	c.proc.Update(func(st *restart.Status) { st.PID, st.Started = pid, time.Now() })
	log.Info("started", "pid", pid, "binary", c.bin)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	readyCtx, readyStop := context.WithCancel(ctx)
	go s.awaitReady(readyCtx, c, pid)

	var werr error
	select {
	case werr = <-exited:
	case <-ctx.Done():
		readyStop()
		werr = s.terminate(pid, exited, log)
		return restart.Exit{Err: werr, Desc: exitString(werr)}, nil
	}
	readyStop()
	// The child is gone; anything left in its process group is too.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	out.Flush() // a last line without its newline
	cause := ""
	if werr != nil {
		// Wait has copied all the child wrote into the ring.
		cause = exitCause(c.logs.since(mark))
	}
	return restart.Exit{Err: werr, Desc: exitString(werr), Cause: cause}, nil
}

// awaitDependencies waits until every process c starts after has been
// ready once, saying in c's status which ones it waits for and why. A
// reload that replaces or removes one of them makes it look again. It
// reports false when ctx is done first.
func (s *Supervisor) awaitDependencies(ctx context.Context, c *child) bool {
	for {
		// Watch before looking: a change in between wakes us at once.
		changed := s.note.watch()
		var waiting []string
		for _, name := range c.p.After {
			if dep := s.dependency(name); dep != nil && !dep.ready() { // nil: a reload removed it
				waiting = append(waiting, dep.describe())
			}
		}
		if len(waiting) == 0 {
			return true
		}
		if w := strings.Join(waiting, ", "); c.status().WaitingFor != w {
			c.proc.Set(StateWaiting, w)
		}
		select {
		case <-changed: // some child's state changed, a reload too
		case <-ctx.Done():
			return false
		}
	}
}

// command builds the exec.Cmd of one run of a child, and the writer of
// its output: each line goes to the child's log ring and, prefixed with
// its name, to the supervisor's stderr.
func (s *Supervisor) command(c *child) (*exec.Cmd, *restart.LineWriter) {
	cmd := exec.Command(c.bin, c.p.Args...)
	cmd.Dir = c.p.Dir
	cmd.Env = append(os.Environ(), c.p.Env...)
	w := restart.NewLineWriter(func(line []byte) {
		c.logs.add(string(line))
		fmt.Fprintf(os.Stderr, "%s | %s\n", c.p.Name, line)
	})
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // its own process group: signals reach its children too
		Pdeathsig: syscall.SIGKILL, // the supervisor died: no orphans (see spawner)
	}
	return cmd, w
}

// awaitReady marks the child ready once its ready socket accepts a
// connection (or at once when it has none).
func (s *Supervisor) awaitReady(ctx context.Context, c *child, pid int) {
	if c.p.ReadySocket != "" {
		addr := c.p.ReadySocket
		if addr[0] == '@' {
			addr = "\x00" + addr[1:]
		}
		for {
			conn, err := net.DialTimeout("unixpacket", addr, 200*time.Millisecond)
			if err == nil {
				_ = conn.Close()
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// Ready before the status says so: the status change is what wakes
	// the processes waiting for this one (awaitDependencies).
	c.readyOnce.Do(func() { close(c.readyCh) })
	c.proc.Update(func(st *restart.Status) {
		if st.PID == pid {
			st.State, st.WaitingFor = StateReady, ""
		}
	})
}

// terminate stops a child: SIGTERM to its process group, SIGKILL after the
// grace period. It returns how the child ended.
func (s *Supervisor) terminate(pid int, exited <-chan error, log *slog.Logger) error {
	grace := s.grace()
	log.Info("stopping", "pid", pid)
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	var err error
	select {
	case err = <-exited:
	case <-t.C:
		log.Warn("did not stop within the grace period: killing", "grace", grace)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		err = <-exited
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // stragglers in its group
	return err
}

func exitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + unix.SignalName(ws.Signal())
		}
	}
	return err.Error()
}

// exitCode is a run's exit status as a shell reports it: the status, or
// 128 plus the signal that killed it; -1 when unknown.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		}
	}
	return -1
}
