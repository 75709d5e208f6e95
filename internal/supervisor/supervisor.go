// Package supervisor runs framehub's processes as a group from one config
// file: the producer first, each consumer once the producer's socket accepts
// connections; each child in its own process group, killed if the supervisor
// dies (PR_SET_PDEATHSIG); crashed children restarted with exponential
// backoff until they crash in a loop; stopped in reverse order, SIGTERM then
// SIGKILL after a grace period. It is the engine of cmd/framehub-supervisor.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	Restarts int       `json:"restarts"`         // restarts since the supervisor started
	Crashes  int       `json:"crashes"`          // consecutive short runs
	LastExit string    `json:"last_exit,omitempty"`
	Error    string    `json:"error,omitempty"`
	Admin    string    `json:"admin,omitempty"`
}

type child struct {
	p       Process
	bin     string
	logs    *logRing
	readyCh chan struct{} // closed the first time the child is ready
	done    chan struct{} // closed when its loop returned
	stop    context.CancelFunc

	mu        sync.Mutex
	st        ChildStatus
	readyOnce sync.Once
}

func (c *child) set(f func(st *ChildStatus)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.st)
}

func (c *child) status() ChildStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

func (c *child) setState(s State) {
	c.set(func(st *ChildStatus) { st.State, st.Since = s, time.Now() })
}

// Supervisor runs a process group. Create it with New, then Run it.
type Supervisor struct {
	cfg      Config
	log      *slog.Logger
	children []*child
	byName   map[string]*child
	spawns   chan spawnReq
	metrics  *metrics
	start    time.Time
}

type spawnReq struct {
	cmd *exec.Cmd
	res chan error
}

// New checks cfg (defaults filled, binaries resolved) and returns a
// supervisor that has started nothing yet.
func New(cfg Config, log *slog.Logger) (*Supervisor, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	selfDir := ""
	if exe, err := os.Executable(); err == nil {
		selfDir = filepath.Dir(exe)
	}
	s := &Supervisor{cfg: cfg, log: log, byName: map[string]*child{}, spawns: make(chan spawnReq), metrics: newMetrics()}
	for _, p := range cfg.Processes {
		bin, err := resolve(p.Binary, selfDir)
		if err != nil {
			return nil, fmt.Errorf("supervisor: process %q: %w", p.Name, err)
		}
		c := &child{p: p, bin: bin, logs: newLogRing(2000), readyCh: make(chan struct{}), done: make(chan struct{})}
		c.st = ChildStatus{Name: p.Name, State: StateWaiting, Since: time.Now(), Admin: p.Admin}
		s.children = append(s.children, c)
		s.byName[p.Name] = c
	}
	return s, nil
}

// Config returns the config in use, with defaults filled.
func (s *Supervisor) Config() Config { return s.cfg }

// Status describes every child, in config order.
func (s *Supervisor) Status() []ChildStatus {
	out := make([]ChildStatus, len(s.children))
	for i, c := range s.children {
		out[i] = c.status()
	}
	return out
}

// Logs returns the last n lines a child wrote (stdout and stderr).
func (s *Supervisor) Logs(name string, n int) ([]string, error) {
	c := s.byName[name]
	if c == nil {
		return nil, fmt.Errorf("supervisor: no process %q", name)
	}
	return c.logs.last(n), nil
}

// Run starts the group and supervises it until ctx is done, then stops every
// child in reverse order and returns. It returns an error only if the group
// could not run at all.
func (s *Supervisor) Run(ctx context.Context) error {
	s.start = time.Now()
	spawnerDone := make(chan struct{})
	go s.spawner(spawnerDone)
	var wg sync.WaitGroup
	for _, c := range s.children {
		cctx, cancel := context.WithCancel(context.Background())
		c.stop = cancel
		wg.Go(func() {
			defer close(c.done)
			s.supervise(cctx, c)
		})
	}
	<-ctx.Done()
	s.log.Info("stopping the group", "grace", s.cfg.Grace)
	for i := len(s.children) - 1; i >= 0; i-- {
		c := s.children[i]
		c.stop()
		<-c.done
	}
	wg.Wait()
	close(s.spawns)
	<-spawnerDone
	return nil
}

// spawner starts every child from one goroutine locked to its OS thread.
// PR_SET_PDEATHSIG fires when the thread that forked the child exits, not
// the process (golang/go#27505): forking from a thread that lives as long as
// the supervisor is what makes "kill the children if the supervisor dies"
// hold, and no sooner.
func (s *Supervisor) spawner(done chan struct{}) {
	defer close(done)
	runtime.LockOSThread()
	// Never unlocked: the thread exits with this goroutine, after every
	// child has been stopped.
	for req := range s.spawns {
		req.res <- req.cmd.Start()
	}
}

// supervise runs one child until stopCtx is cancelled (the group stops) or
// its restart policy gives up.
func (s *Supervisor) supervise(stopCtx context.Context, c *child) {
	log := s.log.With("process", c.p.Name)
	for _, dep := range c.p.After {
		select {
		case <-s.byName[dep].readyCh:
		case <-stopCtx.Done():
			c.setState(StateStopped)
			return
		}
	}
	r := c.p.Restart
	backoff := r.BackoffMin
	for {
		cmd := s.command(c)
		c.setState(StateStarting)
		res := make(chan error, 1)
		select {
		case s.spawns <- spawnReq{cmd: cmd, res: res}:
		case <-stopCtx.Done():
			c.setState(StateStopped)
			return
		}
		if err := <-res; err != nil {
			log.Error("cannot start", "binary", c.bin, "err", err)
			c.set(func(st *ChildStatus) { st.State, st.Since, st.Error = StateFailed, time.Now(), err.Error() })
			s.metrics.state(c.p.Name, StateFailed)
			return
		}
		started := time.Now()
		pid := cmd.Process.Pid
		c.set(func(st *ChildStatus) { st.PID, st.Started, st.Error = pid, started, "" })
		s.metrics.state(c.p.Name, StateStarting)
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
			c.set(func(st *ChildStatus) { st.State, st.Since, st.PID = StateStopped, time.Now(), 0 })
			s.metrics.state(c.p.Name, StateStopped)
			return
		}
		readyStop()
		// The child is gone; anything left in its process group is too.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		ran := time.Since(started)
		exit := exitString(werr)
		c.set(func(st *ChildStatus) { st.LastExit, st.PID = exit, 0 })
		if ran >= r.StableAfter {
			backoff = r.BackoffMin
			c.set(func(st *ChildStatus) { st.Crashes = 0 })
		}
		if r.Policy == "never" || (r.Policy == "on-failure" && werr == nil) {
			log.Info("exited, not restarting", "exit", exit, "ran", ran.Round(time.Millisecond), "policy", r.Policy)
			c.setState(StateStopped)
			s.metrics.state(c.p.Name, StateStopped)
			return
		}
		crashes := 0
		c.set(func(st *ChildStatus) { st.Crashes++; crashes = st.Crashes })
		s.metrics.crashes.WithLabelValues(c.p.Name).Inc()
		if crashes >= r.MaxCrashes {
			msg := fmt.Sprintf("crash loop: %s exited %d times in a row, each within %v of starting (last: %s); giving up",
				c.p.Name, crashes, r.StableAfter, exit)
			log.Error(msg)
			c.set(func(st *ChildStatus) { st.State, st.Since, st.Error = StateFailed, time.Now(), msg })
			s.metrics.state(c.p.Name, StateFailed)
			return
		}
		log.Warn("exited, restarting", "exit", exit, "ran", ran.Round(time.Millisecond), "restart_in", backoff, "crashes", crashes)
		c.setState(StateBackoff)
		s.metrics.state(c.p.Name, StateBackoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-stopCtx.Done():
			t.Stop()
			c.setState(StateStopped)
			s.metrics.state(c.p.Name, StateStopped)
			return
		}
		backoff = min(backoff*2, r.BackoffMax)
		c.set(func(st *ChildStatus) { st.Restarts++ })
		s.metrics.restarts.WithLabelValues(c.p.Name).Inc()
	}
}

// command builds the exec.Cmd of one run of a child.
func (s *Supervisor) command(c *child) *exec.Cmd {
	cmd := exec.Command(c.bin, c.p.Args...)
	cmd.Dir = c.p.Dir
	cmd.Env = append(os.Environ(), c.p.Env...)
	w := &lineWriter{name: c.p.Name, ring: c.logs, out: os.Stderr}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // its own process group: signals reach its children too
		Pdeathsig: syscall.SIGKILL, // the supervisor died: no orphans (see spawner)
	}
	return cmd
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
	c.set(func(st *ChildStatus) {
		if st.PID == pid {
			st.State, st.Since = StateReady, time.Now()
		}
	})
	s.metrics.state(c.p.Name, StateReady)
	c.readyOnce.Do(func() { close(c.readyCh) })
}

// terminate stops a child: SIGTERM to its process group, SIGKILL after the
// grace period.
func (s *Supervisor) terminate(c *child, pid int, exited <-chan error, log *slog.Logger) {
	log.Info("stopping", "pid", pid)
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	t := time.NewTimer(s.cfg.Grace)
	defer t.Stop()
	select {
	case err := <-exited:
		c.set(func(st *ChildStatus) { st.LastExit = exitString(err) })
	case <-t.C:
		log.Warn("did not stop within the grace period: killing", "grace", s.cfg.Grace)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		err := <-exited
		c.set(func(st *ChildStatus) { st.LastExit = exitString(err) })
	}
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
