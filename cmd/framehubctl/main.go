// Command framehubctl controls framehub's daemons from the command line:
//
//	framehubctl <command> [flags]
//
// Each command lives in a file of its own (snapshot.go: `framehubctl
// snapshot`) and registers in commands below.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one framehubctl subcommand. run parses its own flags from args
// (a flag.FlagSet writing to stderr); it returns flag.ErrHelp after -h, and
// an error of type usageError for bad usage.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists the subcommands, in the order the usage shows them.
func commands() []command {
	return []command{
		{name: "status", summary: "the group at a glance: each process, state, uptime, restarts, frame rate, leases, drops, and why it waits or failed", run: runStatus},
		{name: "consumers", summary: "the producer's (or a camera's, -camera) consumers: budget, leases held, frames delivered, skipped and superseded", run: runConsumers},
		{name: "logs", summary: "a supervised process's recent output (-f to follow)", run: runLogs},
		{name: "snapshot", summary: "take a JPEG snapshot with framehub-snapshot (and save it)", run: runSnapshot},
		{name: "record", summary: "record event: start an event recording with framehub-recorder", run: runRecord},
	}
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usage(w io.Writer) {
	fmt.Fprint(w, "Usage: framehubctl <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'framehubctl <command> -h' for a command's flags. Every command takes -addr (the daemon's admin\n"+
		"address) and -json (JSON output: snake_case keys, durations in seconds, times in RFC 3339).\n")
	fmt.Fprint(w, "Commands send the daemons' admin token, read from -token-file, else $FRAMEHUB_ADMIN_TOKEN_FILE, else\n"+
		"/run/framehub/admin.token (root) or $XDG_RUNTIME_DIR/framehub/admin.token: run framehubctl as the\n"+
		"daemons' user or as root (docs/SECURITY.md).\n")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args to a command and returns the exit status: 0 success,
// 1 the command failed, 2 bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ue usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "framehubctl %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "framehubctl %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "framehubctl: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}
