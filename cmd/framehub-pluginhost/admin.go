package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/sdk/plugin/host"
)

// hostHealth is the plugin host's /healthz: the keys of every framehub
// daemon, then each plugin's state. It is not OK ("plugin_down") while a
// plugin is not running: starting, or waiting to restart after a crash.
type hostHealth struct {
	admin.Health
	Plugins map[string]host.State `json:"plugins"`
}

// adminHandler serves the plugin host's admin endpoints: GET /status (each
// plugin's host.Status, JSON; needs the admin token), GET /healthz
// (hostHealth) and GET /metrics (framehub_pluginhost_*, build info).
func adminHandler(h *host.Host) http.Handler {
	clock := admin.NewHealthClock()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		admin.BuildInfo("framehub-pluginhost"), &pluginCollector{h: h})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(h.Status())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		hh := hostHealth{Health: admin.Healthy(), Plugins: map[string]host.State{}}
		var down []string
		for _, st := range h.Status() {
			hh.Plugins[st.Name] = st.State
			if st.State != host.StateRunning {
				why := string(st.State)
				if st.LastError != "" {
					why += ": " + st.LastError
				}
				down = append(down, fmt.Sprintf("%s (%s)", st.Name, why))
			}
		}
		if len(down) > 0 {
			hh.Fail("plugin_down", "not running: "+strings.Join(down, "; "))
		}
		clock.Stamp(&hh.Health)
		admin.WriteHealth(w, hh.OK, hh)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

var (
	descPluginState  = prometheus.NewDesc("framehub_pluginhost_plugin_state", "1 for the state each plugin is in.", []string{"name", "state"}, nil)
	descPluginStarts = prometheus.NewDesc("framehub_pluginhost_plugin_starts_total", "Launches of a plugin's process.", []string{"name"}, nil)
)

// pluginCollector reads the plugins' states at scrape time.
type pluginCollector struct{ h *host.Host }

func (c *pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPluginState
	ch <- descPluginStarts
}

func (c *pluginCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.h.Status() {
		for _, s := range []host.State{host.StateStarting, host.StateRunning, host.StateBackoff, host.StateStopped} {
			v := 0.0
			if st.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descPluginState, prometheus.GaugeValue, v, st.Name, string(s))
		}
		ch <- prometheus.MustNewConstMetric(descPluginStarts, prometheus.CounterValue, float64(st.Starts), st.Name)
	}
}
