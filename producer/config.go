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

	// MaxConnections caps concurrent consumer connections. It defaults to 64.
	MaxConnections int
	// MaxInFlight caps the budget a consumer may ask for. It defaults to 32.
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
	// HelloTimeout bounds the wait for a new connection's Hello. It defaults to 5 seconds.
	HelloTimeout time.Duration
	// EvictInterval is how often lease deadlines are checked. It defaults to
	// 50 ms, which is the precision of eviction.
	EvictInterval time.Duration

	// Logger receives the server's logs. It defaults to slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Addr == "" {
		return errors.New("producer: config: Addr is required")
	}
	if c.SocketMode == 0 {
		c.SocketMode = 0o660
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 64
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 32
	}
	if c.DefaultInFlight == 0 {
		c.DefaultInFlight = 4
	}
	if c.DefaultInFlight > c.MaxInFlight {
		c.DefaultInFlight = c.MaxInFlight
	}
	if c.DefaultMaxHold == 0 {
		c.DefaultMaxHold = 2 * time.Second
	}
	if c.MaxHold == 0 {
		c.MaxHold = 60 * time.Second
	}
	if c.HelloTimeout == 0 {
		c.HelloTimeout = 5 * time.Second
	}
	if c.EvictInterval == 0 {
		c.EvictInterval = 50 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.MaxConnections < 1:
		return fmt.Errorf("producer: config: MaxConnections %d must be ≥ 1", c.MaxConnections)
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
