package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
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
	connected, hasConnected bool               // an rtsp:// camera's framehub_producer_camera_connected
	fps                     map[string]float64 // stream → frames/s
	leases                  int
	drops                   uint64
	consumerFPS             map[string]float64 // consumer name → delivered frames/s
	consumerLeases          map[string]int
	consumerSkipped         map[string]uint64
	consumers               int
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
	if f := b["framehub_producer_camera_connected"]; f != nil && len(f.Metric) > 0 { // only an rtsp:// source has it
		v.connected, v.hasConnected = value(f.Metric[0]) == 1, true
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
	asJSON := fs.Bool("json", false, "print JSON: each process with uptime_seconds, fps, leases, drops, last_exit, last_error, waiting_for, camera "+
		"(with -cameras: each camera with state, connected, h264_fps, raw_fps, consumers, leases, drops, source)")
	cameras := fs.Bool("cameras", false, "only the camera table (a group config with cameras): a row per camera")
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
	if len(st.Cameras) > 0 {
		return statusCameras(ctx, st, *interval, *asJSON, *line, *cameras, stdout, stderr)
	}
	if *cameras {
		return fmt.Errorf("framehub-supervisor at %s: its config lists no cameras", *addr)
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
		r := newRow(p)
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
		printRows(stdout, rows)
	}
	if pErr != nil {
		fmt.Fprintf(stderr, "framehubctl status: no frame rates: %v\n", pErr)
	}
	return nil
}

func newRow(p supervisor.ChildStatus) statusRow {
	r := statusRow{ChildStatus: p}
	if !p.Started.IsZero() && p.PID != 0 {
		r.UptimeSeconds = time.Since(p.Started).Seconds()
	}
	return r
}

func printRows(w io.Writer, rows []statusRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
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

// cameraRow is one line of `framehubctl status`'s camera table.
type cameraRow struct {
	Name   string `json:"name"`
	Source string `json:"source"` // without credentials
	// State is its producer's.
	State supervisor.State `json:"state"`
	// Connected is whether an rtsp:// camera is connected now (null for
	// other sources, and when its producer does not answer).
	Connected *bool   `json:"connected"`
	H264FPS   float64 `json:"h264_fps"`
	RawFPS    float64 `json:"raw_fps"`
	Consumers int     `json:"consumers"`
	Leases    int     `json:"leases"`
	Drops     uint64  `json:"drops"`
	// Error is why its producer's metrics could not be read.
	Error string `json:"error,omitempty"`
}

// statusCameras is `framehubctl status` of a group with cameras: a row
// per process, its figures from its own camera's producer, then a row per
// camera; -cameras only the cameras.
func statusCameras(ctx context.Context, st supervisor.StatusResponse, interval time.Duration, asJSON, line, camerasOnly bool, stdout, stderr io.Writer) error {
	byName := map[string]supervisor.ChildStatus{}
	for _, p := range st.Processes {
		byName[p.Name] = p
	}
	// Every camera's producer is scraped at once: the rates take one
	// interval, not one per camera.
	views := make([]*producerView, len(st.Cameras))
	errs := make([]error, len(st.Cameras))
	var wg sync.WaitGroup
	for i, c := range st.Cameras {
		if len(c.Processes) == 0 {
			continue
		}
		p := byName[c.Processes[0]]
		if p.Admin == "" {
			continue
		}
		wg.Go(func() {
			views[i], errs[i] = viewProducer(ctx, p.Admin, interval)
		})
	}
	wg.Wait()
	camIndex := map[string]int{}
	for i, c := range st.Cameras {
		camIndex[c.Name] = i
	}
	rows := make([]statusRow, 0, len(st.Processes))
	for _, p := range st.Processes {
		r := newRow(p)
		if i, ok := camIndex[p.Camera]; ok {
			if pv := views[i]; pv != nil {
				if p.Name == st.Cameras[i].Processes[0] {
					r.FPS, r.Leases, r.Drops = pv.fps["h264"], pv.leases, pv.drops
				} else {
					base := strings.TrimSuffix(p.Name, "."+p.Camera)
					r.FPS, r.Leases, r.Drops = lookup(pv.consumerFPS, base), lookup(pv.consumerLeases, base), lookup(pv.consumerSkipped, base)
				}
			}
		} else {
			// A process of the whole group (the streamer): its figures over
			// every camera.
			for _, pv := range views {
				if pv != nil {
					r.FPS += lookup(pv.consumerFPS, p.Name)
					r.Leases += lookup(pv.consumerLeases, p.Name)
					r.Drops += lookup(pv.consumerSkipped, p.Name)
				}
			}
		}
		rows = append(rows, r)
	}
	cams := make([]cameraRow, len(st.Cameras))
	for i, c := range st.Cameras {
		cr := cameraRow{Name: c.Name, Source: c.Source}
		if len(c.Processes) > 0 {
			cr.State = byName[c.Processes[0]].State
		}
		if pv := views[i]; pv != nil {
			cr.H264FPS, cr.RawFPS, cr.Consumers, cr.Leases, cr.Drops = pv.fps["h264"], pv.fps["raw"], pv.consumers, pv.leases, pv.drops
			if pv.hasConnected {
				connected := pv.connected
				cr.Connected = &connected
			}
		} else if errs[i] != nil {
			cr.Error = errs[i].Error()
		}
		cams[i] = cr
	}
	switch {
	case asJSON && camerasOnly:
		return writeJSON(stdout, cams)
	case asJSON:
		return writeJSON(stdout, rows)
	case line:
		var parts []string
		for _, c := range cams {
			parts = append(parts, fmt.Sprintf("%s %s h264 %.1f fps", c.Name, c.State, c.H264FPS))
		}
		for _, r := range rows {
			if r.Camera == "" {
				parts = append(parts, r.Name+" "+string(r.State))
			}
		}
		fmt.Fprintln(stdout, strings.Join(parts, " | "))
		return nil
	}
	if !camerasOnly {
		printRows(stdout, rows)
		fmt.Fprintln(stdout)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CAMERA\tSTATE\tCONNECTED\tH264 FPS\tRAW FPS\tCONSUMERS\tLEASES\tDROPS\tSOURCE")
	for _, c := range cams {
		conn := "-"
		if c.Connected != nil {
			conn = map[bool]string{true: "yes", false: "no"}[*c.Connected]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%.1f\t%d\t%d\t%d\t%s\n", c.Name, c.State, conn, c.H264FPS, c.RawFPS, c.Consumers, c.Leases, c.Drops, c.Source)
	}
	_ = tw.Flush()
	for _, c := range cams {
		if c.Error != "" {
			fmt.Fprintf(stderr, "framehubctl status: camera %s: no frame rates: %s\n", c.Name, c.Error)
		}
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
