package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/framehub/framehub/internal/restart"
	"github.com/framehub/framehub/sdk/plugin"
)

// supervisor runs one plugin: its restart loop and status are the restart
// engine's (internal/restart), one run launches the plugin and watches it
// (runOnce). Session and health are read from other goroutines under mu.
type supervisor struct {
	cfg  *Config
	pc   PluginConfig
	log  *slog.Logger
	proc *restart.Process

	mu       sync.Mutex
	session  uint64             // the producer's session id of the current run
	health   plugin.HealthReply // the last answer to a health check
	healthAt time.Time
}

func newSupervisor(cfg *Config, pc PluginConfig) *supervisor {
	log := cfg.Logger.With("plugin", pc.Name)
	return &supervisor{
		cfg: cfg, pc: pc, log: log,
		proc: restart.New(restart.Config{
			Name:    pc.Name,
			Policy:  restart.Policy{Restart: restart.Always, BackoffMin: cfg.RestartMin, BackoffMax: cfg.RestartMax, StableAfter: cfg.StableAfter},
			Log:     log,
			Initial: restart.Starting,
		}),
	}
}

func (s *supervisor) status() Status {
	p := s.proc.Status()
	st := Status{Name: s.pc.Name, State: State(p.State), Since: p.Since, PID: p.PID, Starts: p.Starts,
		LastError: p.LastError, LastExit: p.LastExit}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.PID != 0 {
		st.Session = s.session
	}
	st.Health = s.health
	if !s.healthAt.IsZero() {
		st.HealthAgeSeconds = time.Since(s.healthAt).Seconds()
	}
	return st
}

// run launches the plugin and relaunches it, with backoff, whenever it
// ends, until ctx is done.
func (s *supervisor) run(ctx context.Context) {
	s.proc.Run(ctx, func(ctx context.Context) (restart.Exit, error) {
		var desc string
		err := s.runOnce(ctx, &desc)
		exit := restart.Exit{Err: err, Desc: desc}
		if ctx.Err() == nil {
			exit.Cause = err.Error()
		}
		return exit, nil // a launch that fails is retried like a crash
	})
}

// runOnce launches the plugin, starts its consumer and watches it. It
// returns why the plugin ended, after its process has exited, and sets
// *exit to how the process ended.
func (s *supervisor) runOnce(ctx context.Context, exit *string) (err error) {
	s.mu.Lock()
	s.session = 0
	s.mu.Unlock()
	cmd := exec.Command(s.pc.Path, s.pc.Args...)
	// The environment is built here (SkipHostEnv below): go-plugin would
	// append the host's after ours, and the last duplicate wins.
	cmd.Env = append(cmd.Environ(), plugin.LogLevelEnv+"="+s.minLevel().String())
	cmd.Env = append(cmd.Env, s.pc.Env...)
	// If the host dies without stopping its plugins, the kernel kills
	// them. (Sent when the forking thread exits; the host never locks and
	// ends OS threads, so that is when the process exits.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr := newLineLogger(s.log, "stderr")
	syncStderr := newLineLogger(s.log, "stderr")
	syncStdout := newLineLogger(s.log, "stdout")
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		Plugins:          plugin.PluginMap,
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolNetRPC},
		StartTimeout:     s.cfg.StartTimeout,
		SkipHostEnv:      true,
		// go-plugin's own logger is off: it would parse the plugin's stderr
		// a second time. Its raw lines go to Stderr, re-logged by us.
		Logger:     hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Off}),
		Stderr:     stderr,
		SyncStderr: syncStderr,
		SyncStdout: syncStdout,
	})
	// Every exit path kills the process and waits for it, and for the
	// goroutines below, before runOnce returns.
	var waitDone chan struct{}
	defer func() {
		*exit = s.kill(client, cmd, errors.Is(err, errHung))
		if waitDone != nil {
			<-waitDone
		}
		for _, w := range []*lineLogger{stderr, syncStderr, syncStdout} {
			w.Flush()
		}
		if ctx.Err() == nil {
			err = fmt.Errorf("%w (process: %s)", err, *exit)
		}
		s.log.Info("plugin process exited", "exit", *exit)
	}()

	rpcClient, err := client.Client()
	if err != nil {
		return fmt.Errorf("launch %s: %w", s.pc.Path, err)
	}
	if cmd.Process != nil {
		pid := cmd.Process.Pid
		for _, w := range []*lineLogger{stderr, syncStderr, syncStdout} {
			w.SetPID(pid)
		}
		s.proc.Update(func(st *restart.Status) { st.PID = pid })
	}
	raw, err := rpcClient.Dispense(plugin.Name)
	if err != nil {
		return fmt.Errorf("dispense %q from %s: %w", plugin.Name, s.pc.Path, err)
	}
	remote, ok := raw.(*plugin.Remote)
	if !ok {
		return fmt.Errorf("dispense %q from %s: got %T, want *plugin.Remote", plugin.Name, s.pc.Path, raw)
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	reply, err := remote.Start(sctx, plugin.StartArgs{
		Name: s.pc.Name, Socket: s.cfg.Socket, Stream: s.pc.Stream, MaxInFlight: s.pc.MaxInFlight,
		MaxHold: s.pc.MaxHold, Policy: s.pc.Policy, Params: s.pc.Params, DialTimeout: s.cfg.StartTimeout,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	s.mu.Lock()
	s.session = reply.Session
	s.mu.Unlock()
	s.proc.Update(func(st *restart.Status) { st.PID, st.State = reply.PID, restart.Running })
	s.log.Info("plugin running", "pid", reply.PID, "session", reply.Session, "stream", s.pc.Stream,
		"budget", reply.MaxInFlight, "max_hold", reply.MaxHold)

	// One Wait call stays pending for the plugin's life: it returns when
	// the consumer's Run returns, and fails when the process dies.
	waitDone = make(chan struct{})
	waitRes := make(chan error, 1)
	go func() {
		defer close(waitDone)
		r, err := remote.Wait(context.Background()) // ends at the latest when kill closes the connection
		switch {
		case err != nil:
			waitRes <- fmt.Errorf("plugin connection lost: %w", err)
		case r.Err != "":
			waitRes <- fmt.Errorf("consumer returned: %s", r.Err)
		default:
			waitRes <- errors.New("consumer returned without an error before it was stopped")
		}
	}()
	return s.watch(ctx, remote, waitRes)
}

// watch checks the plugin's health until it ends or ctx is done.
func (s *supervisor) watch(ctx context.Context, remote *plugin.Remote, waitRes <-chan error) error {
	health := time.NewTicker(s.cfg.HealthInterval)
	defer health.Stop()
	lastStats := time.Now()
	for {
		select {
		case <-ctx.Done():
			s.log.Info("stopping plugin")
			sctx, cancel := context.WithTimeout(context.Background(), s.cfg.StopTimeout)
			err := remote.Stop(sctx, s.cfg.StopTimeout*3/4)
			cancel()
			if err != nil {
				s.log.Warn("plugin did not stop cleanly", "err", err)
			}
			return ctx.Err()
		case err := <-waitRes:
			return err
		case <-health.C:
			hctx, cancel := context.WithTimeout(ctx, s.cfg.HealthTimeout)
			h, err := remote.Health(hctx)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					continue // stopping: handled above
				}
				return fmt.Errorf("%w: %w", errHung, err)
			}
			s.mu.Lock()
			s.health, s.healthAt = h, time.Now()
			s.mu.Unlock()
			if s.cfg.StatsInterval > 0 && time.Since(lastStats) >= s.cfg.StatsInterval {
				lastStats = time.Now()
				s.logStats(h)
			}
		}
	}
}

func (s *supervisor) logStats(h plugin.HealthReply) {
	metrics := make([]any, 0, 2*len(h.Metrics))
	for _, k := range slices.Sorted(maps.Keys(h.Metrics)) {
		metrics = append(metrics, k, h.Metrics[k])
	}
	s.log.Info("plugin stats", "received", h.Stats.Received, "released", h.Stats.Released,
		"dropped", h.Stats.Dropped, "held", h.Stats.Unreleased, "reconnects", h.Stats.Reconnects,
		"evictions", h.Stats.Evictions, slog.Group("metrics", metrics...))
}

// errHung is the end of a plugin that failed a health check.
var errHung = errors.New("health check failed (plugin hung or dead)")

// kill ends the plugin process: go-plugin's graceful quit, then SIGKILL if
// the process is still there after StopTimeout. A hung plugin (force) gets
// SIGKILL first: it could not answer the quit. It returns how the process
// ended.
func (s *supervisor) kill(client *goplugin.Client, cmd *exec.Cmd, force bool) string {
	if force && cmd.Process != nil {
		s.log.Warn("killing hung plugin", "pid", cmd.Process.Pid)
		_ = cmd.Process.Kill()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		client.Kill() // blocks until the process exited and go-plugin's goroutines ended
	}()
	t := time.NewTimer(s.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		if cmd.Process != nil {
			s.log.Warn("plugin did not exit; killing it", "pid", cmd.Process.Pid)
			_ = cmd.Process.Kill()
		}
		<-done
	}
	// client.Kill waited for go-plugin's cmd.Wait, which set ProcessState.
	if cmd.ProcessState == nil {
		return "not started"
	}
	return cmd.ProcessState.String()
}

// minLevel is the lowest level the host's logger records, passed on to the
// plugin so that it does not send lines the host would drop.
func (s *supervisor) minLevel() slog.Level {
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if s.log.Enabled(context.Background(), l) {
			return l
		}
	}
	return slog.LevelError
}
