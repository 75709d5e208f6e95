package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// session mirrors producer.SessionInfo in the producer's /consumers.
type session struct {
	ID            uint64
	Name          string
	Stream        string
	PID           int
	Policy        string
	Budget        int
	MaxHold       time.Duration
	Connected     time.Time
	InFlight      int
	Delivered     uint64
	SkippedBudget uint64
	SkippedSocket uint64
	Released      uint64
}

func runConsumers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consumers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("producer", "127.0.0.1:7701", "framehub-producer admin address (host:port or unix:/path)")
	asJSON := fs.Bool("json", false, "print JSON")
	tokenFile := tokenFlag(fs)
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	body, err := newDaemonAPI("framehub-producer", *addr, *tokenFile).get(ctx, "/consumers")
	if err != nil {
		return err
	}
	var ss []session
	if err := json.Unmarshal(body, &ss); err != nil {
		return fmt.Errorf("framehub-producer at %s: /consumers: %w", *addr, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ss)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tNAME\tSTREAM\tPID\tPOLICY\tBUDGET\tLEASES\tMAX HOLD\tDELIVERED\tSKIPPED\tCONNECTED")
	for _, s := range ss {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%d\t%v\t%d\t%d\t%s\n", s.ID, s.Name, s.Stream, s.PID, s.Policy, s.Budget,
			s.InFlight, s.MaxHold, s.Delivered, s.SkippedBudget+s.SkippedSocket, time.Since(s.Connected).Round(time.Second))
	}
	return tw.Flush()
}
