package plugin

import (
	"context"
	"log/slog"
	"net/rpc"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/framehub/framehub/sdk"
)

// ProtocolVersion is the version of the host–plugin protocol: the RPC
// methods and the types in rpc.go. A host refuses a plugin built for another
// version (go-plugin's handshake compares them before any RPC).
const ProtocolVersion = 1

// Name is the name under which a plugin serves its consumer (go-plugin's
// "dispense" name).
const Name = "consumer"

// LogLevelEnv is the environment variable through which the host tells a
// plugin the lowest level worth logging ("debug", "info", "warn", "error").
const LogLevelEnv = "FRAMEHUB_PLUGIN_LOG_LEVEL"

// Handshake is the go-plugin handshake shared by the host and its plugins.
// The magic cookie only tells a plugin binary started by hand that it is a
// plugin; it is not a security measure. Read-only.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "FRAMEHUB_PLUGIN",
	MagicCookieValue: "framehub-consumer-plugin-v1",
}

// PluginMap is the plugin set a host dispenses from. Read-only.
var PluginMap = map[string]goplugin.Plugin{Name: &ConsumerPlugin{}}

// Consumer is what a plugin implements.
type Consumer interface {
	// Configure is called once, before Run, with the host's settings for
	// this plugin. An error fails the plugin's start (the host retries with
	// backoff, so report configuration errors clearly).
	Configure(cfg Config) error
	// Run receives frames from c until ctx is cancelled, then returns nil
	// (c.Consume is that loop). It must Release every frame it gets from
	// c, within the MaxHold the host configured. Returning early (with or without an error) ends the
	// plugin's subscription and the host restarts the plugin. c is closed
	// by the plugin runtime after Run returns; Run must not close it.
	Run(ctx context.Context, c *sdk.Client) error
}

// MetricsReporter is implemented by consumers that expose metrics. The host
// fetches them with every health check, logs them and serves them in its
// status. Metrics is called concurrently with Run.
type MetricsReporter interface {
	Metrics() map[string]float64
}

// Config is a plugin's configuration, from the host.
type Config struct {
	// Name is the plugin's name in the host's configuration; the producer
	// sees the plugin's subscription under this name.
	Name string
	// Params are the plugin-specific settings of the host's configuration.
	Params map[string]string
	// Stream is the stream the plugin is subscribed to.
	Stream string
	// Logger writes JSON lines to the plugin's stderr, which the host
	// re-logs under the plugin's name.
	Logger *slog.Logger
}

// ConsumerPlugin is the go-plugin plugin of a framehub consumer. In the
// plugin process Impl is the consumer; in the host it is nil. Serve sets it
// up; use it directly only to serve with custom go-plugin options.
type ConsumerPlugin struct {
	// Impl is the consumer (plugin side only).
	Impl Consumer
	// Logger is the plugin's logger (plugin side only). It defaults to
	// slog.Default().
	Logger *slog.Logger

	mu      sync.Mutex
	servers []*rpcServer
}

// Server returns the RPC server of the consumer (plugin side).
func (p *ConsumerPlugin) Server(*goplugin.MuxBroker) (any, error) {
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &rpcServer{impl: p.Impl, log: log, done: make(chan struct{})}
	p.mu.Lock()
	p.servers = append(p.servers, s)
	p.mu.Unlock()
	return s, nil
}

// Client returns the host's handle on the plugin, a *Remote (host side).
func (p *ConsumerPlugin) Client(_ *goplugin.MuxBroker, c *rpc.Client) (any, error) {
	return &Remote{c: c}, nil
}

// shutdown stops the consumers that were started, for a host that quit
// without calling Stop.
func (p *ConsumerPlugin) shutdown(timeout time.Duration) {
	p.mu.Lock()
	servers := p.servers
	p.servers = nil
	p.mu.Unlock()
	for _, s := range servers {
		if err := s.stop(timeout); err != nil {
			s.log.Warn("stopping the consumer", "err", err)
		}
	}
}

// Serve runs impl as a framehub plugin: it answers go-plugin's handshake on
// stdout, then serves the host's RPCs until the host tells it to quit. It is
// the whole main of a plugin. A binary started by hand, not by a host, exits
// with status 1 and a message saying so.
func Serve(impl Consumer) {
	// go-plugin replaces os.Stderr with a pipe to the host's RPC connection
	// once it serves; the logger keeps the real stderr, which the host reads
	// line by line (and which also receives panics and runtime errors).
	stderr := os.Stderr
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: levelFromEnv()}))
	slog.SetDefault(log)
	p := &ConsumerPlugin{Impl: impl, Logger: log}
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         map[string]goplugin.Plugin{Name: p},
		Logger:          hclog.New(&hclog.LoggerOptions{Output: stderr, JSONFormat: true, Level: hclog.Warn}),
	})
	p.shutdown(5 * time.Second)
}

func levelFromEnv() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(os.Getenv(LogLevelEnv)))); err != nil {
		return slog.LevelInfo
	}
	return l
}
