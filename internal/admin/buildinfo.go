package admin

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Build is what a binary knows of its own build.
type Build struct {
	Version   string // the module's version ("(devel)" for a local build)
	Revision  string // the VCS revision, with "+dirty" for modified trees; "unknown" when not stamped
	GoVersion string
}

// ReadBuild returns the running binary's build.
func ReadBuild() Build {
	b := Build{Version: "unknown", Revision: "unknown", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if bi.Main.Version != "" {
		b.Version = bi.Main.Version
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && b.Revision != "unknown" {
		b.Revision += "+dirty"
	}
	return b
}

// BuildInfo returns the framehub_build_info gauge of daemon, which every
// framehub daemon registers on its /metrics: always 1, its labels say
// which build runs (daemon, version, revision, go_version).
func BuildInfo(daemon string) prometheus.Collector {
	b := ReadBuild()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "framehub_build_info",
		Help: "Which build of a framehub daemon runs: always 1, labelled with the daemon, its module version, VCS revision and Go version.",
		ConstLabels: prometheus.Labels{"daemon": daemon, "version": b.Version, "revision": b.Revision,
			"go_version": b.GoVersion},
	})
	g.Set(1)
	return g
}
