// Package supervisor runs framehub's processes as a group from one config
// file: the producer first, each consumer once the producer's socket accepts
// connections; each child in its own process group, killed if the supervisor
// dies (PR_SET_PDEATHSIG); crashed children restarted with exponential
// backoff until they crash in a loop; stopped in reverse order, SIGTERM then
// SIGKILL after a grace period. A new config (Reload, on SIGHUP) restarts
// only the processes whose entry changed. It is the engine of
// cmd/framehub-supervisor. Each child's restart loop, status and output
// relay are the restart engine's (internal/restart), which the plugin host
// shares; what is the supervisor's own is the group: start order, the
// ready sockets, the spawner thread, reloads.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/framehub/framehub/internal/admin"
)

// Supervisor runs a process group. Create it with New, then Run it.
type Supervisor struct {
	log     *slog.Logger
	selfDir string // the supervisor's executable's directory, where binaries are also looked up
	spawns  chan spawnReq
	reloads chan reloadReq
	done    chan struct{} // closed when Run returns
	metrics *metrics
	health  *admin.HealthClock
	wg      sync.WaitGroup // every child's supervise goroutine

	mu       sync.Mutex
	cfg      Config
	note     *notifier         // told when a child's status changes, and when a reload replaced children
	children []*child          // config order
	byName   map[string]*child // the same children
	start    time.Time
}

type spawnReq struct {
	cmd *exec.Cmd
	res chan error
}

// New checks cfg (defaults filled, binaries resolved) and returns a
// supervisor that has started nothing yet.
func New(cfg Config, log *slog.Logger) (*Supervisor, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Supervisor{log: log, spawns: make(chan spawnReq), reloads: make(chan reloadReq), done: make(chan struct{}),
		metrics: newMetrics(), health: admin.NewHealthClock(), byName: map[string]*child{}, note: newNotifier()}
	if exe, err := os.Executable(); err == nil {
		s.selfDir = filepath.Dir(exe)
	}
	bins, err := s.check(&cfg)
	if err != nil {
		return nil, err
	}
	s.cfg = cfg
	for _, p := range cfg.Processes {
		c := s.newChild(p, bins[p.Name], nil)
		s.children = append(s.children, c)
		s.byName[p.Name] = c
		s.metrics.add(p.Name)
	}
	return s, nil
}

// Check reports what New would find wrong with cfg: an invalid value, a
// binary that is not there.
func Check(cfg Config) error {
	s := &Supervisor{}
	if exe, err := os.Executable(); err == nil {
		s.selfDir = filepath.Dir(exe)
	}
	_, err := s.check(&cfg)
	return err
}

// check validates cfg (filling its defaults) and resolves every binary.
func (s *Supervisor) check(cfg *Config) (map[string]string, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	bins := make(map[string]string, len(cfg.Processes))
	for _, p := range cfg.Processes {
		bin, err := resolve(p.Binary, s.selfDir)
		if err != nil {
			return nil, fmt.Errorf("supervisor: process %q: %w", p.Name, err)
		}
		bins[p.Name] = bin
	}
	return bins, nil
}

// Config returns the config in use, with defaults filled.
func (s *Supervisor) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// Status describes every child, in config order.
func (s *Supervisor) Status() []ChildStatus {
	s.mu.Lock()
	list := append([]*child(nil), s.children...)
	s.mu.Unlock()
	out := make([]ChildStatus, len(list))
	for i, c := range list {
		out[i] = c.status()
	}
	return out
}

// Logs returns the last n lines a child wrote (stdout and stderr).
func (s *Supervisor) Logs(name string, n int) ([]string, error) {
	s.mu.Lock()
	c := s.byName[name]
	s.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("supervisor: no process %q", name)
	}
	return c.logs.last(n), nil
}

// Run starts the group and supervises it until ctx is done, then stops every
// child in reverse order and returns. Reload works while Run runs. It
// returns an error only if the group could not run at all.
func (s *Supervisor) Run(ctx context.Context) error {
	defer close(s.done)
	s.mu.Lock()
	s.start = time.Now()
	for _, c := range s.children {
		s.launch(c)
	}
	s.mu.Unlock()
	spawnerDone := make(chan struct{})
	go s.spawner(spawnerDone)
	for running := true; running; {
		select {
		case req := <-s.reloads:
			req.res <- s.apply(req)
		case <-ctx.Done():
			running = false
		}
	}
	s.mu.Lock()
	grace := s.cfg.Grace
	list := append([]*child(nil), s.children...)
	s.mu.Unlock()
	s.log.Info("stopping the group", "grace", grace)
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stopAndWait()
	}
	s.wg.Wait()
	close(s.spawns)
	<-spawnerDone
	return nil
}

// launch starts c's supervise goroutine. The caller holds s.mu.
func (s *Supervisor) launch(c *child) {
	cctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	s.wg.Go(func() {
		defer close(c.done)
		s.supervise(cctx, c)
	})
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

// dependency returns the child named name now (nil when a reload removed
// it).
func (s *Supervisor) dependency(name string) *child {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byName[name]
}

// grace returns the stop grace period of the config in use.
func (s *Supervisor) grace() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.Grace
}

// ErrNotRunning is returned by Reload when Run is not running.
var ErrNotRunning = errors.New("supervisor: not running")
