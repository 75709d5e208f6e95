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
)

// State is where a child is in its life.
type State string

// Child states.
const (
	StateWaiting  State = "waiting"  // for the processes it starts after
	StateStarting State = "starting" // started, not ready yet
	StateReady    State = "ready"    // running (and its ready socket accepts)
	StateBackoff  State = "backoff"  // crashed, waiting to restart
	StateStopped  State = "stopped"  // exited and not restarted (policy), or stopped by the supervisor
	StateFailed   State = "failed"   // crash loop, or cannot start: given up
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
}

// child is one process entry of the config being supervised. A reload
// that changes the entry replaces the child (keeping its logs and restart
// count).
type child struct {
	p       Process
	bin     string
	logs    *logRing
	readyCh chan struct{} // closed the first time the child is ready
	done    chan struct{} // closed when its supervise loop returned
	stop    context.CancelFunc

	note *notifier // told of every change of st

	mu        sync.Mutex
	st        ChildStatus
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

// newChild returns the child of entry p, whose binary resolved to bin,
// telling note of its changes. A child it replaces (prev, or nil) passes
// on its logs and counters.
func newChild(p Process, bin string, note *notifier, prev *child) *child {
	c := &child{p: p, bin: bin, note: note, readyCh: make(chan struct{}), done: make(chan struct{})}
	c.st = ChildStatus{Name: p.Name, State: StateWaiting, Since: time.Now(), Admin: p.Admin}
	if prev != nil {
		c.logs = prev.logs
		old := prev.status()
		c.st.Restarts = old.Restarts + 1
		c.st.LastExit, c.st.LastError, c.st.ExitedAt = old.LastExit, old.LastError, old.ExitedAt
	} else {
		c.logs = newLogRing(2000)
	}
	return c
}

func (c *child) set(f func(st *ChildStatus)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.st)
	c.note.notify()
}

func (c *child) status() ChildStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

func (c *child) setState(s State, waitingFor string) {
	c.set(func(st *ChildStatus) { st.State, st.Since, st.WaitingFor = s, time.Now(), waitingFor })
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

// supervise runs one child until stopCtx is cancelled (the group stops, or
// a reload replaces or removes it) or its restart policy gives up.
func (s *Supervisor) supervise(stopCtx context.Context, c *child) {
	log := s.log.With("process", c.p.Name)
	if !s.awaitDependencies(stopCtx, c) {
		c.setState(StateStopped, "")
		s.metrics.state(c.p.Name, StateStopped)
		return
	}
	r := c.p.Restart
	backoff := r.BackoffMin
	for {
		cmd, out := s.command(c)
		readiness := ""
		if c.p.ReadySocket != "" {
			readiness = fmt.Sprintf("its ready socket %s to accept connections", c.p.ReadySocket)
		}
		c.setState(StateStarting, readiness)
		s.metrics.state(c.p.Name, StateStarting)
		res := make(chan error, 1)
		// Marked before the spawn: a child that fails at once may have
		// written its error before the spawn request returns.
		mark := c.logs.mark()
		select {
		case s.spawns <- spawnReq{cmd: cmd, res: res}:
		case <-stopCtx.Done():
			c.setState(StateStopped, "")
			s.metrics.state(c.p.Name, StateStopped)
			return
		}
		if err := <-res; err != nil {
			log.Error("cannot start", "binary", c.bin, "err", err)
			c.set(func(st *ChildStatus) {
				st.State, st.Since, st.Error, st.WaitingFor = StateFailed, time.Now(), "cannot start: "+err.Error(), ""
			})
			s.metrics.state(c.p.Name, StateFailed)
			return
		}
		started := time.Now()
		pid := cmd.Process.Pid
		c.set(func(st *ChildStatus) { st.PID, st.Started, st.Error = pid, started, "" })
		log.Info("started", "pid", pid, "binary", c.bin)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		readyCtx, readyStop := context.WithCancel(stopCtx)
		go s.awaitReady(readyCtx, c, pid)

		var werr error
		select {
		case werr = <-exited:
		case <-stopCtx.Done():
			readyStop()
			s.terminate(c, pid, exited, log)
			c.set(func(st *ChildStatus) {
				st.State, st.Since, st.PID, st.WaitingFor = StateStopped, time.Now(), 0, ""
			})
			s.metrics.state(c.p.Name, StateStopped)
			return
		}
		readyStop()
		// The child is gone; anything left in its process group is too.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		out.flush() // a last line without its newline
		ran := time.Since(started)
		exit := exitString(werr)
		cause := ""
		if werr != nil {
			// Wait has copied all the child wrote into the ring.
			cause = exitCause(c.logs.since(mark))
		}
		c.set(func(st *ChildStatus) { st.LastExit, st.LastError, st.ExitedAt, st.PID = exit, cause, time.Now(), 0 })
		s.metrics.exited(c.p.Name, werr)
		if ran >= r.StableAfter {
			backoff = r.BackoffMin
			c.set(func(st *ChildStatus) { st.Crashes = 0 })
		}
		if r.Policy == "never" || (r.Policy == "on-failure" && werr == nil) {
			log.Info("exited, not restarting", "exit", exit, "cause", cause, "ran", ran.Round(time.Millisecond), "policy", r.Policy)
			c.setState(StateStopped, "")
			s.metrics.state(c.p.Name, StateStopped)
			return
		}
		crashes := 0
		c.set(func(st *ChildStatus) { st.Crashes++; crashes = st.Crashes })
		s.metrics.crashes.WithLabelValues(c.p.Name).Inc()
		if crashes >= r.MaxCrashes {
			last := exit
			if cause != "" {
				last += ": " + cause
			}
			msg := fmt.Sprintf("crash loop: %s exited %d times in a row, each within %v of starting (last: %s); giving up",
				c.p.Name, crashes, r.StableAfter, last)
			log.Error(msg)
			c.set(func(st *ChildStatus) { st.State, st.Since, st.Error, st.WaitingFor = StateFailed, time.Now(), msg, "" })
			s.metrics.state(c.p.Name, StateFailed)
			return
		}
		log.Warn("exited, restarting", "exit", exit, "cause", cause, "ran", ran.Round(time.Millisecond), "restart_in", backoff, "crashes", crashes)
		c.setState(StateBackoff, fmt.Sprintf("its restart in %v (crash %d of %d before giving up)", backoff, crashes, r.MaxCrashes))
		s.metrics.state(c.p.Name, StateBackoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-stopCtx.Done():
			t.Stop()
			c.setState(StateStopped, "")
			s.metrics.state(c.p.Name, StateStopped)
			return
		}
		backoff = min(backoff*2, r.BackoffMax)
		c.set(func(st *ChildStatus) { st.Restarts++ })
		s.metrics.restarts.WithLabelValues(c.p.Name).Inc()
	}
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
			c.setState(StateWaiting, w)
			s.metrics.state(c.p.Name, StateWaiting)
		}
		select {
		case <-changed: // some child's state changed, a reload too
		case <-ctx.Done():
			return false
		}
	}
}

// command builds the exec.Cmd of one run of a child, and the writer of
// its output.
func (s *Supervisor) command(c *child) (*exec.Cmd, *lineWriter) {
	cmd := exec.Command(c.bin, c.p.Args...)
	cmd.Dir = c.p.Dir
	cmd.Env = append(os.Environ(), c.p.Env...)
	w := &lineWriter{name: c.p.Name, ring: c.logs, out: os.Stderr}
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
	c.set(func(st *ChildStatus) {
		if st.PID == pid {
			st.State, st.Since, st.WaitingFor = StateReady, time.Now(), ""
		}
	})
	s.metrics.state(c.p.Name, StateReady)
}

// terminate stops a child: SIGTERM to its process group, SIGKILL after the
// grace period.
func (s *Supervisor) terminate(c *child, pid int, exited <-chan error, log *slog.Logger) {
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
	c.set(func(st *ChildStatus) { st.LastExit, st.LastError, st.ExitedAt = exitString(err), "", time.Now() })
	s.metrics.exited(c.p.Name, err)
	_ = syscall.Kill(-pid, syscall.SIGKILL) // stragglers in its group
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
