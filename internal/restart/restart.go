// Package restart is the restart engine of framehub's two supervisors, the
// process group's (internal/supervisor) and the plugin host's
// (sdk/plugin/host): it runs one process again and again as a Policy says
// (exponential back-off between runs, from the minimum again once a run
// lasted StableAfter, giving up after MaxCrashes short runs in a row),
// keeps the process's Status in one State enum, logs each exit, and tells
// its owner of every change. What one run is, exec'ing a binary and
// waiting for it or launching a go-plugin and watching its health, is the
// owner's: a function Run calls. LineWriter relays what a process writes,
// line by line, to wherever its owner keeps logs.
package restart

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// State is where a supervised process is in its life.
type State string

// States. An owner uses the ones that apply to it: the plugin host has no
// Waiting nor Failed, and its processes are Running where the group's are
// Ready.
const (
	Waiting  State = "waiting"  // for the processes it starts after
	Starting State = "starting" // started, not ready yet
	Ready    State = "ready"    // running, and its ready check passed (a socket that accepts)
	Running  State = "running"  // running: launched and handed its work
	Backoff  State = "backoff"  // ended; waiting before the next start
	Stopped  State = "stopped"  // not running, and not restarted: stopped by its owner, or by Policy.Restart
	Failed   State = "failed"   // given up on: a crash loop, or it cannot start
)

// Restart policies (Policy.Restart).
const (
	Always    = "always"     // after every exit
	OnFailure = "on-failure" // after an exit that was not clean
	Never     = "never"      // never
)

// Policy says when a process is started again, and how soon.
type Policy struct {
	// Restart is Always (the default when empty), OnFailure or Never.
	Restart string
	// BackoffMin and BackoffMax bound the wait before a restart, which
	// doubles after each.
	BackoffMin, BackoffMax time.Duration
	// StableAfter: a run at least this long resets the wait to
	// BackoffMin and the count of crashes.
	StableAfter time.Duration
	// MaxCrashes: after this many runs in a row that each ended within
	// StableAfter, the process Failed (a crash loop). 0: never give up.
	MaxCrashes int
}

// Status is a supervised process's state and history.
type Status struct {
	State State
	Since time.Time // when it entered State
	// PID is the process's while it runs; 0 between runs.
	PID     int
	Started time.Time // when the current (or last) run started
	// Starts counts runs started; Restarts the starts that followed an
	// exit (or a replacement, see New); Crashes the runs in a row that
	// ended within Policy.StableAfter.
	Starts, Restarts, Crashes int
	// LastExit is how the last run ended ("exit status 2", "killed by
	// SIGKILL"), LastError why, in the process's words or the owner's,
	// ExitedAt when.
	LastExit, LastError string
	ExitedAt            time.Time
	// WaitingFor says what a waiting, starting or backing-off process
	// waits for.
	WaitingFor string
	// Error is why it Failed.
	Error string
}

// Exit is how one run ended.
type Exit struct {
	// Err is nil for a clean exit (status 0), else why it was not.
	Err error
	// Desc is how it ended, "exit status 2"; Cause why, "panic: …": they
	// become Status.LastExit and LastError.
	Desc, Cause string
}

// Hooks tell a process's owner what Run does, for its metrics. Each may be
// nil; they are called without the process's lock held.
type Hooks struct {
	State   func(State)     // after every change of state
	Exited  func(err error) // after each run, with Exit.Err
	Crashed func()          // an exit the policy restarts after (or gives up at)
	Restart func()          // a restart begins, after its back-off
}

// Config describes a process to New.
type Config struct {
	// Name names the process in its crash-loop error.
	Name   string
	Policy Policy
	// Log receives the process's exits and restarts; it should carry the
	// process's name.
	Log *slog.Logger
	// Hooks tell the owner what Run does.
	Hooks Hooks
	// Notify, when set, is called after every change of the status,
	// without the process's lock held.
	Notify func()
	// Initial is the state before Run. It defaults to Waiting.
	Initial State
	// StartingFor is what a starting run waits for ("its ready socket …
	// to accept connections"), or "" for nothing: it is set in the same
	// change that makes the process Starting, so no reader sees one
	// without the other.
	StartingFor string
	// Prev is the process this one replaces (a new config for the same
	// name), or nil: the new one inherits its history, its Restarts plus
	// one and its last exit.
	Prev *Process
}

// Process is one supervised process: its status and its restart loop.
// Create it with New.
type Process struct {
	cfg Config

	mu sync.Mutex
	st Status
}

// New returns a process that Run will start.
func New(cfg Config) *Process {
	if cfg.Policy.Restart == "" {
		cfg.Policy.Restart = Always
	}
	if cfg.Initial == "" {
		cfg.Initial = Waiting
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	p := &Process{cfg: cfg}
	p.st = Status{State: cfg.Initial, Since: time.Now()}
	if cfg.Prev != nil {
		old := cfg.Prev.Status()
		p.st.Restarts = old.Restarts + 1
		p.st.LastExit, p.st.LastError, p.st.ExitedAt = old.LastExit, old.LastError, old.ExitedAt
	}
	p.cfg.Prev = nil // not kept alive
	return p
}

// Status returns the process's status.
func (p *Process) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// Update changes the status with f, under the process's lock, and tells
// the owner.
func (p *Process) Update(f func(st *Status)) {
	p.mu.Lock()
	before := p.st.State
	f(&p.st)
	after := p.st.State
	if after != before {
		p.st.Since = time.Now()
	}
	p.mu.Unlock()
	if after != before && p.cfg.Hooks.State != nil {
		p.cfg.Hooks.State(after)
	}
	if p.cfg.Notify != nil {
		p.cfg.Notify()
	}
}

// Set puts the process in state s, waiting for what waitingFor says ("":
// nothing).
func (p *Process) Set(s State, waitingFor string) {
	p.Update(func(st *Status) { st.State, st.WaitingFor = s, waitingFor })
}

// Run runs the process until ctx is done or the policy gives up, and
// leaves it Stopped or Failed. run is one run: it starts the process (the
// status is Starting meanwhile, and run sets PID and any later state), and
// returns how it ended once it has; when ctx is done it stops the process
// and returns. An error from run means the process did not start: when
// ctx is done, because it was stopped first (Stopped); otherwise because
// it cannot start at all, its binary missing, and Run gives up on it
// (Failed).
func (p *Process) Run(ctx context.Context, run func(ctx context.Context) (Exit, error)) {
	pol, log, hooks := p.cfg.Policy, p.cfg.Log, p.cfg.Hooks
	backoff := pol.BackoffMin
	for {
		started := time.Now()
		p.Update(func(st *Status) {
			st.State, st.WaitingFor, st.Started, st.Error = Starting, p.cfg.StartingFor, started, ""
			st.Starts++
		})
		exit, err := run(ctx)
		if err != nil && ctx.Err() != nil {
			p.Update(func(st *Status) { st.State, st.PID = Stopped, 0 })
			return
		}
		if err != nil {
			log.Error("cannot start", "err", err)
			p.Update(func(st *Status) { st.State, st.PID, st.Error = Failed, 0, "cannot start: "+err.Error() })
			return
		}
		ran := time.Since(started)
		p.Update(func(st *Status) {
			st.PID, st.LastExit, st.LastError, st.ExitedAt = 0, exit.Desc, exit.Cause, time.Now()
		})
		if hooks.Exited != nil {
			hooks.Exited(exit.Err)
		}
		if ctx.Err() != nil {
			p.Set(Stopped, "")
			return
		}
		if ran >= pol.StableAfter {
			backoff = pol.BackoffMin
			p.Update(func(st *Status) { st.Crashes = 0 })
		}
		if pol.Restart == Never || (pol.Restart == OnFailure && exit.Err == nil) {
			log.Info("exited, not restarting", "exit", exit.Desc, "cause", exit.Cause, "ran", ran.Round(time.Millisecond), "policy", pol.Restart)
			p.Set(Stopped, "")
			return
		}
		crashes := 0
		p.Update(func(st *Status) { st.Crashes++; crashes = st.Crashes })
		if hooks.Crashed != nil {
			hooks.Crashed()
		}
		if pol.MaxCrashes > 0 && crashes >= pol.MaxCrashes {
			last := exit.Desc
			if exit.Cause != "" {
				last += ": " + exit.Cause
			}
			msg := fmt.Sprintf("crash loop: %s exited %d times in a row, each within %v of starting (last: %s); giving up",
				p.cfg.Name, crashes, pol.StableAfter, last)
			log.Error(msg)
			p.Update(func(st *Status) { st.State, st.Error, st.WaitingFor = Failed, msg, "" })
			return
		}
		log.Warn("exited, restarting", "exit", exit.Desc, "cause", exit.Cause, "ran", ran.Round(time.Millisecond),
			"restart_in", backoff, "crashes", crashes)
		waiting := fmt.Sprintf("its restart in %v", backoff)
		if pol.MaxCrashes > 0 {
			waiting += fmt.Sprintf(" (crash %d of %d before giving up)", crashes, pol.MaxCrashes)
		}
		p.Set(Backoff, waiting)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			p.Set(Stopped, "")
			return
		}
		backoff = min(backoff*2, pol.BackoffMax)
		p.Update(func(st *Status) { st.Restarts++ })
		if hooks.Restart != nil {
			hooks.Restart()
		}
	}
}
