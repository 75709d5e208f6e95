// Package daemonrun is how every framehub daemon (cmd/framehub-*) is wired:
// a main of one call, Main, which parses the command line (the flag set with
// its usage text and the -log-level flag, the daemon's config file), makes
// the text logger on stderr and runs the daemon until SIGINT or SIGTERM; and
// inside each daemon, RunActors, which runs its parts (the frame source, the
// admin server, a reload loop) together and stops them together. It fixes
// the exit status every daemon shares, on which supervisors and scripts
// rely: 2 for a bad command line or config (and -help prints the usage and
// exits 0), 1 when the daemon fails, 0 when it stops on a signal or ends by
// itself.
package daemonrun

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"github.com/oklog/run"
)

// Program is a daemon: the Options type of each daemon package implements
// it.
type Program interface {
	// Load fills the daemon's settings from the command line args, with
	// its flags defined on fs (and the config file a flag names). An error
	// is a bad command line or config.
	Load(fs *flag.FlagSet, args []string) error
	// Run runs the daemon until ctx is done (then it returns nil), or until
	// it ends by itself or fails. An error wrapped by BadConfig is a setting
	// the daemon found wrong only once it had its logger.
	Run(ctx context.Context, log *slog.Logger) error
}

// Main is the whole main function of daemon name: it loads p's settings
// (on a bad command line or config it prints "<name>: <error>" and exits
// with status 2; -help prints usage and the flags' defaults, and exits 0),
// makes the logger (-log-level), runs p until SIGINT or SIGTERM, and exits
// with status 1 when p failed.
func Main(name, usage string, p Program) {
	fs := newFlagSet(name, usage)
	var level slog.Level
	fs.TextVar(&level, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	if err := p.Load(fs, os.Args[1:]); err != nil {
		exitBadConfig(name, err)
	}
	log := newLogger(os.Stderr, level)
	if code := runMain(log, name, p, os.Interrupt, syscall.SIGTERM); code != 0 {
		os.Exit(code)
	}
}

// newFlagSet returns the flag set of daemon name, whose -help prints usage
// and then the flags' defaults; a bad flag exits with status 2.
func newFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func exitBadConfig(name string, err error) {
	fmt.Fprintln(os.Stderr, name+":", err)
	os.Exit(2)
}

// errBadConfig marks the errors of BadConfig.
var errBadConfig = errors.New("bad config")

type badConfig struct{ err error }

func (e badConfig) Error() string        { return e.err.Error() }
func (e badConfig) Unwrap() []error      { return []error{e.err, errBadConfig} }
func (e badConfig) Is(target error) bool { return target == errBadConfig }

// BadConfig marks err, returned by a Program's Run, as a problem of the
// daemon's settings, which restarting will not fix: the daemon exits with
// status 2, like for a bad command line.
func BadConfig(err error) error { return badConfig{err} }

// runMain runs p until it returns or one of signals arrives, and returns
// the exit status.
func runMain(log *slog.Logger, name string, p Program, signals ...os.Signal) int {
	var g run.Group
	g.Add(run.SignalHandler(context.Background(), signals...))
	var once sync.Once
	add(context.Background(), &g, log, []Actor{{Name: name, Run: func(ctx context.Context) error { return p.Run(ctx, log) }}},
		func() { once.Do(func() { log.Info("stopping " + name) }) })
	err := g.Run()
	var sig run.SignalError
	switch {
	case err == nil, errors.As(err, &sig):
		return 0
	case errors.Is(err, errBadConfig):
		fmt.Fprintln(os.Stderr, name+":", err)
		return 2
	}
	log.Error(name+" failed", "err", err)
	return 1
}

// Actor is one part of a daemon that RunActors runs with the others.
type Actor struct {
	// Name says what it is ("admin", "rtsp server"), in the debug log line
	// "stopping" that its stop writes.
	Name string
	// Run runs until ctx is done, then returns nil; or it returns
	// earlier, with the error that made it stop (nil: it ended by itself),
	// which stops the other actors.
	Run func(ctx context.Context) error
}

// RunActors runs actors together until ctx is done or one of them returns:
// then it cancels the contexts of all the others and returns once every
// one has returned, with the error of the first to return (nil when it
// ended by itself, or when ctx ended them).
func RunActors(ctx context.Context, log *slog.Logger, actors ...Actor) error {
	var g run.Group
	done, cancel := context.WithCancel(ctx)
	defer cancel()
	g.Add(func() error {
		<-done.Done()
		return nil
	}, func(error) { cancel() })
	add(ctx, &g, log, actors, nil)
	return g.Run()
}

// add adds actors to g, each with a context of its own, derived from
// parent, that its interrupt cancels; stopping, when set, is called at
// every interrupt.
func add(parent context.Context, g *run.Group, log *slog.Logger, actors []Actor, stopping func()) {
	for _, a := range actors {
		ctx, cancel := context.WithCancel(parent)
		g.Add(func() error { return a.Run(ctx) }, func(error) {
			if stopping != nil {
				stopping()
			}
			log.Debug("stopping", "actor", a.Name)
			cancel()
		})
	}
}
