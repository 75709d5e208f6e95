package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/rpc"
	"os"
	"sync"
	"time"

	"github.com/framehub/framehub/sdk"
)

// The RPC protocol, version ProtocolVersion. These types travel as gob over
// go-plugin's net/rpc connection; adding fields is compatible, anything
// else needs a new ProtocolVersion. None of them carries frame data: frames
// reach the plugin over the producer's socket only.

// StartArgs is what the host asks a plugin to do: subscribe, then Run.
type StartArgs struct {
	// Name is the plugin's name; it is also the consumer name the producer
	// shows for the plugin's subscription.
	Name string
	// Socket is the producer's socket address, dialled by the plugin.
	Socket string
	// Stream, MaxInFlight, MaxHold and Policy are the subscription's
	// sdk.Options (zero values take the SDK's and the producer's defaults).
	Stream      string
	MaxInFlight int
	MaxHold     time.Duration
	Policy      string
	// Params are the plugin-specific settings (Config.Params).
	Params map[string]string
	// DialTimeout bounds the subscription's handshake.
	DialTimeout time.Duration
}

// StartReply says what the plugin got from the producer.
type StartReply struct {
	PID         int           // the plugin's process id (the producer sees the same)
	Session     uint64        // the producer's session id of the subscription
	MaxInFlight int           // granted budget
	MaxHold     time.Duration // granted deadline
}

// HealthReply is a plugin's state, answered to every health check.
type HealthReply struct {
	// Running is true while the consumer's Run has not returned.
	Running bool `json:"running"`
	// Err is the error Run returned, if it did.
	Err string `json:"err,omitempty"`
	// Stats are the plugin's SDK counters: frames received, released and
	// dropped, reconnects, evictions, frames held now.
	Stats sdk.Stats `json:"stats"`
	// Metrics are the consumer's own metrics (MetricsReporter), or nil.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Uptime is how long ago the subscription started (in JSON:
	// uptime_seconds).
	Uptime time.Duration `json:"-"`
}

// healthJSON is HealthReply in framehub's JSON style: durations in seconds.
type healthJSON struct {
	Running       bool               `json:"running"`
	Err           string             `json:"err,omitempty"`
	Stats         sdk.Stats          `json:"stats"`
	Metrics       map[string]float64 `json:"metrics,omitempty"`
	UptimeSeconds float64            `json:"uptime_seconds"`
}

// MarshalJSON writes the reply with its uptime in seconds. (The RPC
// between host and plugin is gob, which does not use it.)
func (r HealthReply) MarshalJSON() ([]byte, error) {
	return json.Marshal(healthJSON{Running: r.Running, Err: r.Err, Stats: r.Stats, Metrics: r.Metrics, UptimeSeconds: r.Uptime.Seconds()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *HealthReply) UnmarshalJSON(b []byte) error {
	var h healthJSON
	if err := json.Unmarshal(b, &h); err != nil {
		return err
	}
	*r = HealthReply{Running: h.Running, Err: h.Err, Stats: h.Stats, Metrics: h.Metrics,
		Uptime: time.Duration(h.UptimeSeconds * float64(time.Second))}
	return nil
}

// RunResult is how a consumer's Run ended.
type RunResult struct {
	Err string // "" when Run returned nil
}

// StopArgs asks a plugin to stop its consumer.
type StopArgs struct {
	// Timeout bounds the wait for Run to return after its context was
	// cancelled.
	Timeout time.Duration
}

// Empty is the argument or reply of RPCs that need none.
type Empty struct{}

// rpcServer is the plugin side of the RPC: it runs the consumer.
type rpcServer struct {
	impl Consumer
	log  *slog.Logger
	done chan struct{} // closed when Run returned

	mu      sync.Mutex
	started bool
	client  *sdk.Client
	cancel  context.CancelFunc
	runErr  error
	since   time.Time
	stopped bool
}

// Start configures the consumer, subscribes and starts Run.
func (s *rpcServer) Start(args StartArgs, reply *StartReply) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("plugin: start: already started")
	}
	if s.impl == nil {
		return errors.New("plugin: start: no consumer (ConsumerPlugin.Impl is nil)")
	}
	if err := s.impl.Configure(Config{Name: args.Name, Params: args.Params, Stream: args.Stream, Logger: s.log}); err != nil {
		return fmt.Errorf("plugin %q: configure: %w", args.Name, err)
	}
	timeout := args.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	dctx, dcancel := context.WithTimeout(context.Background(), timeout)
	defer dcancel()
	c, err := sdk.Dial(dctx, args.Socket, sdk.Options{
		Stream: args.Stream, Name: args.Name, MaxInFlight: args.MaxInFlight, MaxHold: args.MaxHold,
		Policy: sdk.Policy(args.Policy), Reconnect: true, Logger: s.log,
	})
	if err != nil {
		return fmt.Errorf("plugin %q: subscribe to stream %q at %s: %w", args.Name, args.Stream, args.Socket, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.started, s.client, s.cancel, s.since = true, c, cancel, time.Now()
	go func() {
		// done is waited for by Wait, stop and the host's Stop. It is not
		// closed by a defer: a panic in Run must crash the process (the
		// host restarts it), not make Wait report a clean return first.
		err := s.impl.Run(ctx, c)
		s.mu.Lock()
		s.runErr = err
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("consumer stopped", "err", err)
		}
		close(s.done)
	}()
	sub := c.Subscription()
	*reply = StartReply{PID: os.Getpid(), Session: sub.Session, MaxInFlight: sub.MaxInFlight, MaxHold: sub.MaxHold}
	s.log.Info("subscribed", "stream", args.Stream, "session", sub.Session, "budget", sub.MaxInFlight, "max_hold", sub.MaxHold)
	return nil
}

// Health reports the consumer's state, counters and metrics.
func (s *rpcServer) Health(_ Empty, reply *HealthReply) error {
	s.mu.Lock()
	started, c, since := s.started, s.client, s.since
	s.mu.Unlock()
	if !started {
		*reply = HealthReply{}
		return nil
	}
	h := HealthReply{Running: true, Stats: c.Stats(), Uptime: time.Since(since)}
	select {
	case <-s.done: // runErr is set before done is closed
		h.Running = false
		s.mu.Lock()
		if s.runErr != nil {
			h.Err = s.runErr.Error()
		}
		s.mu.Unlock()
	default:
	}
	if m, ok := s.impl.(MetricsReporter); ok {
		h.Metrics = m.Metrics()
	}
	*reply = h
	return nil
}

// Wait blocks until the consumer's Run returns. The host keeps one Wait
// call pending: it returns at once when Run ends, and fails at once when
// the plugin process dies (the RPC connection closes).
func (s *rpcServer) Wait(_ Empty, reply *RunResult) error {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return errors.New("plugin: wait: not started")
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runErr != nil {
		reply.Err = s.runErr.Error()
	}
	return nil
}

// Stop cancels Run, waits for it to return and closes the subscription.
func (s *rpcServer) Stop(args StopArgs, _ *Empty) error {
	return s.stop(args.Timeout)
}

func (s *rpcServer) stop(timeout time.Duration) error {
	s.mu.Lock()
	if !s.started || s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	cancel, c := s.cancel, s.client
	s.mu.Unlock()
	cancel()
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	var err error
	select {
	case <-s.done:
	case <-t.C:
		// Closing the client makes a Run blocked in Next return ErrClosed;
		// a Run stuck elsewhere ends with the process.
		err = fmt.Errorf("plugin: stop: Run did not return within %v of its context being cancelled", timeout)
	}
	if cerr := c.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("plugin: stop: close the subscription: %w", cerr)
	}
	return err
}

// Remote is the host's handle on a plugin's consumer (what go-plugin's
// Dispense returns for Name). Every call takes a context bounding the wait
// for the answer: net/rpc cannot cancel a call, so a call that times out
// stays pending until the plugin answers or its connection closes.
type Remote struct {
	c *rpc.Client
}

// call runs method and returns its reply. The reply is decoded into memory
// of its own, read only once the call completed: after a timeout the RPC
// client may still write it when the answer comes.
func call[T any](ctx context.Context, c *rpc.Client, method string, args any) (T, error) {
	var zero T
	reply := new(T)
	cl := c.Go("Plugin."+method, args, reply, make(chan *rpc.Call, 1))
	select {
	case <-cl.Done:
		if cl.Error != nil {
			return zero, fmt.Errorf("plugin rpc %s: %w", method, cl.Error)
		}
		return *reply, nil
	case <-ctx.Done():
		return zero, fmt.Errorf("plugin rpc %s: no answer: %w", method, ctx.Err())
	}
}

// Start configures the plugin's consumer, subscribes it and starts its Run.
func (r *Remote) Start(ctx context.Context, args StartArgs) (StartReply, error) {
	return call[StartReply](ctx, r.c, "Start", args)
}

// Health returns the plugin's state, counters and metrics.
func (r *Remote) Health(ctx context.Context) (HealthReply, error) {
	return call[HealthReply](ctx, r.c, "Health", Empty{})
}

// Wait blocks until the plugin's Run returns (its result) or the plugin's
// connection fails (an error).
func (r *Remote) Wait(ctx context.Context) (RunResult, error) {
	return call[RunResult](ctx, r.c, "Wait", Empty{})
}

// Stop asks the plugin to cancel Run, wait up to timeout for it and close
// its subscription.
func (r *Remote) Stop(ctx context.Context, timeout time.Duration) error {
	_, err := call[Empty](ctx, r.c, "Stop", StopArgs{Timeout: timeout})
	return err
}
