package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	dto "github.com/prometheus/client_model/go"

	"github.com/framehub/framehub/internal/supervisor"
)

// statusRow is one line of `framehubctl status`.
type statusRow struct {
	supervisor.ChildStatus
	UptimeSeconds float64 `json:"uptime_seconds,omitempty"`
	FPS           float64 `json:"fps"`
	Leases        int     `json:"leases"`
	// Drops are, for the producer, frames lost for every consumer (at
	// the source, by the encoder); for a consumer, the frames the
	// producer skipped for it (its budget, its full socket). Skips by the
	// latest policy (superseded pending frames) are not drops.
	Drops uint64 `json:"drops"`
}

// note is the NOTE column of a row: why it failed, what it waits for, or
// how its last run ended and what it said.
func (r statusRow) note() string {
	switch {
	case r.Error != "":
		return r.Error
	case r.WaitingFor != "" && r.State != supervisor.StateReady:
		return "waiting for " + r.WaitingFor
	case r.LastExit != "" && r.LastError != "":
		return "last exit: " + r.LastExit + ": " + r.LastError
	case r.LastExit != "":
		return "last exit: " + r.LastExit
	}
	return ""
}

// producerView is what the producer's metrics say, per consumer and overall.
type producerView struct {
	fps             map[string]float64 // stream → frames/s
	leases          int
	drops           uint64
	consumerFPS     map[string]float64 // consumer name → delivered frames/s
	consumerLeases  map[string]int
	consumerSkipped map[string]uint64
	consumers       int
}

func scrape(ctx context.Context, addr string) (map[string]*dto.MetricFamily, error) {
	body, err := newDaemonAPI("framehub-producer", addr, "").get(ctx, "/metrics") // open: no token needed
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return nil, fmt.Errorf("framehub-producer at %s: parse /metrics: %w", addr, err)
	}
	return fams, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// viewProducer scrapes the producer twice, interval apart, for rates.
func viewProducer(ctx context.Context, addr string, interval time.Duration) (*producerView, error) {
	a, err := scrape(ctx, addr)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(interval):
	}
	b, err := scrape(ctx, addr)
	if err != nil {
		return nil, err
	}
	secs := time.Since(t0).Seconds()
	v := &producerView{fps: map[string]float64{}, consumerFPS: map[string]float64{}, consumerLeases: map[string]int{}, consumerSkipped: map[string]uint64{}}
	rate := func(name string, key func(*dto.Metric) string, into map[string]float64) {
		before := map[string]float64{}
		if f := a[name]; f != nil {
			for _, m := range f.Metric {
				before[key(m)] += value(m)
			}
		}
		if f := b[name]; f != nil {
			for _, m := range f.Metric {
				into[key(m)] += (value(m) - before[key(m)]) / secs
			}
		}
	}
	rate("framehub_producer_frames_total", func(m *dto.Metric) string { return label(m, "stream") }, v.fps)
	rate("framehub_producer_consumer_delivered_total", func(m *dto.Metric) string { return label(m, "consumer") }, v.consumerFPS)
	if f := b["framehub_producer_leases"]; f != nil {
		for _, m := range f.Metric {
			v.leases += int(value(m))
		}
	}
	if f := b["framehub_producer_dropped_total"]; f != nil {
		for _, m := range f.Metric {
			if r := label(m, "reason"); r != "budget" && r != "socket_full" { // one consumer's skips: its own row
				v.drops += uint64(value(m))
			}
		}
	}
	if f := b["framehub_producer_consumers"]; f != nil {
		for _, m := range f.Metric {
			v.consumers += int(value(m))
		}
	}
	if f := b["framehub_producer_consumer_leases"]; f != nil {
		for _, m := range f.Metric {
			v.consumerLeases[label(m, "consumer")] += int(value(m))
		}
	}
	if f := b["framehub_producer_consumer_skipped_total"]; f != nil {
		for _, m := range f.Metric {
			v.consumerSkipped[label(m, "consumer")] += uint64(value(m))
		}
	}
	return v, nil
}

// consumerName maps a supervised process to the name its SDK client uses
// (the program name, framehub-<process> for the shipped consumers).
func lookup[T any](m map[string]T, process string) T {
	if v, ok := m[process]; ok {
		return v
	}
	return m["framehub-"+process]
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:7700", "framehub-supervisor admin address (host:port or unix:/path)")
	producerAddr := fs.String("producer", "", "producer admin address; default: the one the supervisor's config names")
	asJSON := fs.Bool("json", false, "print JSON: each process with uptime_seconds, fps, leases, drops, last_exit, last_error, waiting_for")
	line := fs.Bool("line", false, "print one summary line (for a live status)")
	interval := fs.Duration("interval", time.Second, "time between the two metric samples that give frame rates")
	tokenFile := tokenFlag(fs)
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	body, err := newDaemonAPI("framehub-supervisor", *addr, *tokenFile).get(ctx, "/status")
	if err != nil {
		return err
	}
	var st supervisor.StatusResponse
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("framehub-supervisor at %s: /status: %w", *addr, err)
	}
	pAddr := *producerAddr
	producerName := ""
	for _, p := range st.Processes {
		if strings.Contains(p.Name, "producer") {
			producerName = p.Name
			if pAddr == "" {
				pAddr = p.Admin
			}
		}
	}
	var pv *producerView
	var pErr error
	if pAddr != "" {
		pv, pErr = viewProducer(ctx, pAddr, *interval)
	}
	rows := make([]statusRow, 0, len(st.Processes))
	for _, p := range st.Processes {
		r := statusRow{ChildStatus: p}
		if !p.Started.IsZero() && p.PID != 0 {
			r.UptimeSeconds = time.Since(p.Started).Seconds()
		}
		if pv != nil {
			if p.Name == producerName {
				r.FPS, r.Leases, r.Drops = pv.fps["raw"], pv.leases, pv.drops
			} else {
				r.FPS, r.Leases, r.Drops = lookup(pv.consumerFPS, p.Name), lookup(pv.consumerLeases, p.Name), lookup(pv.consumerSkipped, p.Name)
			}
		}
		rows = append(rows, r)
	}
	switch {
	case *asJSON:
		if err := writeJSON(stdout, rows); err != nil {
			return err
		}
	case *line:
		var parts []string
		if pv != nil {
			parts = append(parts, fmt.Sprintf("raw %.1f fps, h264 %.1f fps, %d consumers, %d leases, %d drops",
				pv.fps["raw"], pv.fps["h264"], pv.consumers, pv.leases, pv.drops))
		}
		for _, r := range rows {
			parts = append(parts, r.Name+" "+string(r.State))
		}
		fmt.Fprintln(stdout, strings.Join(parts, " | "))
	default:
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tPID\tUPTIME\tRESTARTS\tFPS\tLEASES\tDROPS\tNOTE")
		for _, r := range rows {
			uptime := ""
			if r.UptimeSeconds > 0 {
				uptime = (time.Duration(r.UptimeSeconds) * time.Second).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%.1f\t%d\t%d\t%s\n", r.Name, r.State, r.PID, uptime, r.Restarts, r.FPS, r.Leases, r.Drops, r.note())
		}
		_ = tw.Flush()
	}
	if pErr != nil {
		fmt.Fprintf(stderr, "framehubctl status: no frame rates: %v\n", pErr)
	}
	return nil
}

// usageErr marks flag parsing errors (other than -h) as bad usage.
func usageErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err}
}
