// Package daemonrun is the common frame of the framehub daemons' main
// functions (cmd/framehub-*): the flag set with its usage text and the
// -log-level flag, the text logger on stderr, and running the daemon until
// SIGINT or SIGTERM. It fixes the exit status every daemon shares, on which
// supervisors and scripts rely: 2 for a bad command line or config (and -help
// prints the usage and exits 0), 1 when the daemon fails, 0 when it stops on a
// signal or ends by itself.
package daemonrun

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"

	"github.com/oklog/run"
)

// Command is a daemon's command line.
type Command struct {
	name  string
	level slog.Level
	// Flags is the daemon's flag set: define its flags on it and parse it,
	// usually with the daemon's options loader. A bad flag exits with status 2.
	Flags *flag.FlagSet
}

// New returns the command line of the daemon name, whose -help prints usage
// and then the flags' defaults. It defines the -log-level flag, which
// Logger reads.
func New(name, usage string) *Command {
	c := &Command{name: name, Flags: flag.NewFlagSet(name, flag.ExitOnError)}
	c.Flags.Usage = func() {
		fmt.Fprint(c.Flags.Output(), usage)
		c.Flags.PrintDefaults()
	}
	c.Flags.TextVar(&c.level, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	return c
}

// Check does nothing when err is nil. Otherwise err is a problem of the
// command line, the config or the daemon's settings, which restarting will
// not fix: Check prints "<name>: <err>" on stderr and exits with status 2.
func (c *Command) Check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, c.name+":", err)
		os.Exit(2)
	}
}

// Logger returns the daemon's logger: text on stderr, at the level of
// -log-level. Call it once the flags are parsed.
func (c *Command) Logger() *slog.Logger {
	return newLogger(os.Stderr, c.level)
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// Daemon is what Run runs.
type Daemon struct {
	// Run runs the daemon until ctx is done (or it ends by itself, or fails).
	Run func(ctx context.Context) error
	// Stopping is logged when the daemon is asked to stop (a signal, or
	// another actor ended); Failed is logged, with the error, when the
	// daemon or an actor failed.
	Stopping, Failed string
	// Actors run along with the daemon, each until its interrupt function
	// makes it return, for example an admin server; the first of them or
	// the daemon to return stops all the others.
	Actors []Actor
}

// Actor is one more member of the run group: Execute runs until Interrupt
// (called once, with the error that ended the group) makes it return.
type Actor struct {
	Execute   func() error
	Interrupt func(error)
}

// Run runs d until it returns or SIGINT or SIGTERM arrives, then returns if
// d ended well or on the signal, and otherwise logs d.Failed and exits with
// status 1.
func Run(log *slog.Logger, d Daemon) {
	if code := runGroup(log, d, os.Interrupt, syscall.SIGTERM); code != 0 {
		os.Exit(code)
	}
}

// runGroup is Run without the exit, stopped by signals: it returns the
// exit status.
func runGroup(log *slog.Logger, d Daemon, signals ...os.Signal) int {
	var g run.Group
	g.Add(run.SignalHandler(context.Background(), signals...))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g.Add(func() error { return d.Run(ctx) }, func(error) {
		log.Info(d.Stopping)
		cancel()
	})
	for _, a := range d.Actors {
		g.Add(a.Execute, a.Interrupt)
	}
	err := g.Run()
	var sig run.SignalError
	if err == nil || errors.As(err, &sig) {
		return 0
	}
	log.Error(d.Failed, "err", err)
	return 1
}
