package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/framehub/framehub/producer"
)

func runConsumers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consumers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:7701", "framehub-producer admin address (host:port or unix:/path)")
	fs.StringVar(addr, "producer", "127.0.0.1:7701", "the old name of -addr")
	asJSON := fs.Bool("json", false, "print JSON (the producer's /consumers: snake_case keys, durations in seconds)")
	tokenFile := tokenFlag(fs)
	cam := addCameraFlags(fs, "producer")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	a, err := cam.addr(ctx, "producer", *addr, *tokenFile)
	if err != nil {
		return err
	}
	addr = &a
	body, err := newDaemonAPI("framehub-producer", *addr, *tokenFile).get(ctx, "/consumers")
	if err != nil {
		return err
	}
	var ss []producer.ConsumerJSON
	if err := json.Unmarshal(body, &ss); err != nil {
		return fmt.Errorf("framehub-producer at %s: /consumers: %w", *addr, err)
	}
	if *asJSON {
		return writeJSON(stdout, ss)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tNAME\tSTREAM\tPID\tPOLICY\tBUDGET\tLEASES\tMAX HOLD\tDELIVERED\tSKIPPED\tSUPERSEDED\tCONNECTED")
	for _, s := range ss {
		hold := time.Duration(s.MaxHoldSeconds * float64(time.Second))
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%d\t%v\t%d\t%d\t%d\t%s\n", s.Session, s.Name, s.Stream, s.PID, s.Policy, s.Budget,
			s.InFlight, hold, s.Delivered, s.SkippedBudget+s.SkippedSocket, s.Superseded, time.Since(s.Connected).Round(time.Second))
	}
	return tw.Flush()
}

// writeJSON prints v as indented JSON: what every -json prints.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
