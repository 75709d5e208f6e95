package producer

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Config configures a Server. Zero values take the defaults given on each
// field; New validates the result.
type Config struct {
	// Addr is the socket: a filesystem path, or "@name" for the Linux
	// abstract namespace (which has no file mode: use AllowUIDs/AllowGIDs).
	// Required.
	Addr string
	// SocketMode is the file mode of a path socket. It defaults to 0660.
	SocketMode os.FileMode
	// SocketGID, when set (≥ 0 with SetSocketGID), is the group of a path socket, e.g. "video".
	SocketGID    int
	SetSocketGID bool
	// AllowUIDs and AllowGIDs, when either is non-empty, admit only peers
	// whose SO_PEERCRED uid is in AllowUIDs or gid is in AllowGIDs.
	AllowUIDs []int
	AllowGIDs []int

	// MaxConnections caps subscribed consumers. It defaults to 64.
	MaxConnections int
	// MaxHandshakes caps the connections that have not sent their Hello
	// yet, over all peers; MaxHandshakesPerUID and MaxHandshakesPerProcess
	// per peer uid and process (SO_PEERCRED). A connection over any of them
	// gets Reject ipc.CodeTooMany at once, so one process holding silent
	// connections cannot keep another out. They default to 32, 16 and 4.
	MaxHandshakes           int
	MaxHandshakesPerUID     int
	MaxHandshakesPerProcess int
	// MaxInFlight caps the budget a consumer may ask for. It defaults to 8.
	// Admission control grants less when the stream's pool cannot back it
	// (see package fanout): never more than half of what a stream can share.
	MaxInFlight int
	// DefaultInFlight is the budget of a consumer that asks for 0. It defaults to 4.
	DefaultInFlight int
	// DefaultMaxHold is the lease deadline of a consumer that asks for 0. It
	// defaults to 2 seconds.
	DefaultMaxHold time.Duration
	// MaxHold caps the deadline a consumer may ask for. It defaults to 60
	// seconds. Long holds (delay lines, pre-event buffers) need a pool sized for them.
	MaxHold time.Duration
	// AllowLossless lets consumers ask for lossless delivery (HelloLossless).
	// A lossless consumer at its budget makes the producer drop the frame at
	// the source for every consumer instead of skipping only that consumer; it
	// is still evicted at its deadline, which bounds the stall. Defaults to false.
	AllowLossless bool
	// HelloTimeout bounds the wait for a new connection's Hello. It
	// defaults to 1 second.
	HelloTimeout time.Duration
	// PenaltyWindow is how long an eviction (max_hold, reclaim) halves the
	// budget of a consumer that comes back with the same uid and name. It
	// defaults (0) to fanout's, 60 seconds.
	PenaltyWindow time.Duration
	// ControlRate and ControlBurst are each consumer's allowance of messages
	// that release nothing (Ping, RequestKeyframe, empty Release, unknown
	// types): per second sustained, and at once. A consumer past it is
	// closed with ipc.CodeRateLimit. They default (0) to fanout's, 50 and
	// 100.
	ControlRate  float64
	ControlBurst int
	// EvictInterval is how often lease deadlines are checked while no frame
	// flows (each frame checks them); it defaults to 50 ms, which is then
	// the precision of eviction. When frames stop, the first check comes
	// within a second.
	EvictInterval time.Duration

	// Logger receives the server's logs. It defaults to slog.Default().
	Logger *slog.Logger
}

// Defaults returns the configuration of the defaults given on each field
// (Addr, which has none, empty; PenaltyWindow, ControlRate and ControlBurst
// 0, which package fanout fills): the values New gives zero fields, and
// those of framehub-producer's flags.
func Defaults() Config {
	return Config{
		SocketMode: 0o660, MaxConnections: 64, MaxHandshakes: 32, MaxHandshakesPerUID: 16, MaxHandshakesPerProcess: 4,
		MaxInFlight: 8, DefaultInFlight: 4, DefaultMaxHold: 2 * time.Second, MaxHold: 60 * time.Second,
		HelloTimeout: time.Second, EvictInterval: 50 * time.Millisecond,
	}
}

func (c *Config) setDefaults() error {
	if c.Addr == "" {
		return errors.New("producer: config: Addr is required")
	}
	d := Defaults()
	fill := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	fillDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	if c.SocketMode == 0 {
		c.SocketMode = d.SocketMode
	}
	fill(&c.MaxConnections, d.MaxConnections)
	fill(&c.MaxHandshakes, d.MaxHandshakes)
	fill(&c.MaxHandshakesPerUID, d.MaxHandshakesPerUID)
	fill(&c.MaxHandshakesPerProcess, d.MaxHandshakesPerProcess)
	fill(&c.MaxInFlight, d.MaxInFlight)
	fill(&c.DefaultInFlight, d.DefaultInFlight)
	if c.DefaultInFlight > c.MaxInFlight {
		c.DefaultInFlight = c.MaxInFlight
	}
	fillDur(&c.DefaultMaxHold, d.DefaultMaxHold)
	fillDur(&c.MaxHold, d.MaxHold)
	fillDur(&c.HelloTimeout, d.HelloTimeout)
	fillDur(&c.EvictInterval, d.EvictInterval)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.MaxConnections < 1:
		return fmt.Errorf("producer: config: MaxConnections %d must be ≥ 1", c.MaxConnections)
	case c.MaxHandshakes < 1 || c.MaxHandshakesPerUID < 1 || c.MaxHandshakesPerProcess < 1:
		return fmt.Errorf("producer: config: MaxHandshakes %d, MaxHandshakesPerUID %d and MaxHandshakesPerProcess %d must be ≥ 1",
			c.MaxHandshakes, c.MaxHandshakesPerUID, c.MaxHandshakesPerProcess)
	case c.HelloTimeout < 0 || c.PenaltyWindow < 0 || c.ControlRate < 0 || c.ControlBurst < 0:
		return fmt.Errorf("producer: config: HelloTimeout %v, PenaltyWindow %v, ControlRate %v and ControlBurst %d must not be negative",
			c.HelloTimeout, c.PenaltyWindow, c.ControlRate, c.ControlBurst)
	case c.MaxInFlight < 1:
		return fmt.Errorf("producer: config: MaxInFlight %d must be ≥ 1", c.MaxInFlight)
	case c.DefaultInFlight < 1:
		return fmt.Errorf("producer: config: DefaultInFlight %d must be ≥ 1", c.DefaultInFlight)
	case c.DefaultMaxHold < 0 || c.MaxHold < 0:
		return fmt.Errorf("producer: config: DefaultMaxHold %v and MaxHold %v must be positive", c.DefaultMaxHold, c.MaxHold)
	case c.DefaultMaxHold > c.MaxHold:
		return fmt.Errorf("producer: config: DefaultMaxHold %v exceeds MaxHold %v", c.DefaultMaxHold, c.MaxHold)
	case c.SocketMode&^os.ModePerm != 0:
		return fmt.Errorf("producer: config: SocketMode %v has bits other than permissions", c.SocketMode)
	}
	return nil
}

func (c *Config) allowed(uid, gid int) bool {
	if len(c.AllowUIDs) == 0 && len(c.AllowGIDs) == 0 {
		return true
	}
	for _, u := range c.AllowUIDs {
		if u == uid {
			return true
		}
	}
	for _, g := range c.AllowGIDs {
		if g == gid {
			return true
		}
	}
	return false
}
