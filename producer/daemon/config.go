package daemon

import (
	"flag"

	"github.com/framehub/framehub/internal/config"
	"github.com/framehub/framehub/internal/rundir"
)

// validate checks values a type cannot; its errors are *config.FieldError
// naming the key.
func (o *Options) validate() error {
	switch {
	case o.Socket == "":
		return config.Invalid("socket", "%w", rundir.SocketError(o.Socket))
	case o.SocketMode > 0o777:
		return config.Invalid("socket-mode", "%#o has bits other than permissions", o.SocketMode)
	case o.Width != 0 && (o.Width < 2 || o.Width%2 != 0):
		return config.Invalid("width", "%d must be an even number ≥ 2 (or 0: the source's own)", o.Width)
	case o.Height != 0 && (o.Height < 2 || o.Height%2 != 0):
		return config.Invalid("height", "%d must be an even number ≥ 2 (or 0: the source's own)", o.Height)
	case (o.Width == 0) != (o.Height == 0):
		return config.Invalid("height", "give both width (%d) and height (%d), or neither", o.Width, o.Height)
	case o.FPS < 0:
		return config.Invalid("fps", "%v must not be negative", o.FPS)
	case o.PoolMin < 0:
		return config.Invalid("pool-min", "%d must not be negative", o.PoolMin)
	case o.PoolMax < 1 || o.PoolMax < o.PoolMin:
		return config.Invalid("pool-max", "%d must be ≥ 1 and ≥ pool-min (%d)", o.PoolMax, o.PoolMin)
	case o.PoolRes < 0 || (o.PoolRes > 0 && o.PoolRes >= o.PoolMax):
		return config.Invalid("pool-reserve", "%d must be 0 (the default) or in 1..pool-max-1 (%d)", o.PoolRes, o.PoolMax-1)
	case o.MaxConnections < 1:
		return config.Invalid("max-connections", "%d must be ≥ 1", o.MaxConnections)
	case o.MaxHandshakes < 1:
		return config.Invalid("max-handshakes", "%d must be ≥ 1", o.MaxHandshakes)
	case o.HandshakesUID < 1:
		return config.Invalid("max-handshakes-per-uid", "%d must be ≥ 1", o.HandshakesUID)
	case o.HandshakesProc < 1:
		return config.Invalid("max-handshakes-per-process", "%d must be ≥ 1", o.HandshakesProc)
	case o.HelloTimeout <= 0:
		return config.Invalid("hello-timeout", "%v must be positive", o.HelloTimeout)
	case o.PenaltyWindow < 0:
		return config.Invalid("penalty-window", "%v must not be negative", o.PenaltyWindow)
	case o.MaxInFlight < 1:
		return config.Invalid("max-in-flight", "%d must be ≥ 1", o.MaxInFlight)
	case o.DefaultInFlight < 1 || o.DefaultInFlight > o.MaxInFlight:
		return config.Invalid("default-in-flight", "%d must be in 1..max-in-flight (%d)", o.DefaultInFlight, o.MaxInFlight)
	case o.DefaultMaxHold <= 0 || o.DefaultMaxHold > o.MaxHold:
		return config.Invalid("default-max-hold", "%v must be positive and ≤ max-hold (%v)", o.DefaultMaxHold, o.MaxHold)
	}
	return nil
}

// Load fills o from the command line and the -config file (see
// config.ParseFlags). Unlike the consumers, the producer has always
// ignored arguments after the flags, and scripts may rely on that.
func (o *Options) Load(fs *flag.FlagSet, args []string) error {
	o.RegisterFlags(fs)
	return config.ParseFlags(fs, args, o, nil, o.validate)
}
