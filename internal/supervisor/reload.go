package supervisor

import (
	"context"
	"reflect"
	"slices"
	"strings"
)

// Reloaded says what a reload did, by process name.
type Reloaded struct {
	Added     []string // started
	Removed   []string // stopped
	Restarted []string // stopped and started again: their entry changed, or they had failed
	Unchanged []string // left running as they were
	// Ignored names the top-level keys that changed but take effect only
	// when the supervisor starts again (admin, admin-token,
	// admin-public): the values in use are kept.
	Ignored []string
}

type reloadReq struct {
	cfg  Config
	bins map[string]string
	res  chan Reloaded
}

// Reload replaces the group's config by cfg while Run runs: processes
// whose entry is new are started (after the processes they wait for),
// those no longer in cfg are stopped, those whose entry changed in any key
// are stopped and started again, and those that failed (crash loop) are
// started again; every other process keeps running untouched. grace
// applies at once; the admin keys only at the next start. An invalid cfg
// (what Load or New would refuse, a binary that is not there) is an error
// and changes nothing: the group goes on with the config it has.
func (s *Supervisor) Reload(ctx context.Context, cfg Config) (Reloaded, error) {
	return s.ReloadFrom(ctx, func() (Config, error) { return cfg, nil })
}

// ReloadFrom is Reload of the config load returns (a file read again); an
// error of load is a refused reload too.
func (s *Supervisor) ReloadFrom(ctx context.Context, load func() (Config, error)) (Reloaded, error) {
	cfg, err := load()
	var bins map[string]string
	if err == nil {
		bins, err = s.check(&cfg)
	}
	if err != nil {
		s.metrics.reloaded(false)
		return Reloaded{}, err
	}
	req := reloadReq{cfg: cfg, bins: bins, res: make(chan Reloaded, 1)}
	select {
	case s.reloads <- req:
	case <-s.done:
		return Reloaded{}, ErrNotRunning
	case <-ctx.Done():
		return Reloaded{}, ctx.Err()
	}
	// Applying is bounded by the grace periods of the processes it stops.
	r := <-req.res
	s.metrics.reloaded(true)
	return r, nil
}

// apply makes the reload of req, on Run's goroutine.
func (s *Supervisor) apply(req reloadReq) Reloaded {
	var r Reloaded
	s.mu.Lock()
	cur := s.cfg
	old := append([]*child(nil), s.children...)
	s.mu.Unlock()

	next := req.cfg
	if next.Admin != cur.Admin {
		r.Ignored = append(r.Ignored, "admin")
	}
	if next.TokenFile != cur.TokenFile {
		r.Ignored = append(r.Ignored, "admin-token")
	}
	if next.Public != cur.Public {
		r.Ignored = append(r.Ignored, "admin-public")
	}
	next.Admin, next.Access = cur.Admin, cur.Access
	if len(r.Ignored) > 0 {
		s.log.Warn("reload: these keys take effect when the supervisor starts again; keeping the values in use",
			"keys", strings.Join(r.Ignored, ","))
	}

	wanted := make(map[string]Process, len(next.Processes))
	for _, p := range next.Processes {
		wanted[p.Name] = p
	}
	keep := map[string]*child{}
	replaced := map[string]*child{}
	for _, c := range old {
		p, ok := wanted[c.p.Name]
		if !ok {
			s.log.Info("reload: process removed, stopping it", "process", c.p.Name)
			r.Removed = append(r.Removed, c.p.Name)
			continue
		}
		diff := changedKeys(c.p, p)
		if c.bin != req.bins[p.Name] && !slices.Contains(diff, "binary") {
			diff = append(diff, "binary")
		}
		switch {
		case len(diff) > 0:
			s.log.Info("reload: process changed, restarting it", "process", c.p.Name, "changed", strings.Join(diff, ","))
		case c.status().State == StateFailed:
			s.log.Info("reload: process had failed, starting it again", "process", c.p.Name)
		default:
			keep[c.p.Name] = c
			r.Unchanged = append(r.Unchanged, c.p.Name)
			continue
		}
		replaced[c.p.Name] = c
		r.Restarted = append(r.Restarted, c.p.Name)
	}
	// Stop what goes or changes, last-started first, before starting
	// anything: a new producer binds the socket its predecessor held.
	for i := len(old) - 1; i >= 0; i-- {
		if c := old[i]; keep[c.p.Name] == nil {
			c.stopAndWait()
		}
	}
	for _, name := range r.Removed {
		s.metrics.remove(name)
	}

	s.mu.Lock()
	s.cfg = next
	s.children = s.children[:0:0]
	s.byName = make(map[string]*child, len(next.Processes))
	for _, p := range next.Processes {
		c := keep[p.Name]
		if c == nil {
			prev := replaced[p.Name]
			if prev == nil {
				s.log.Info("reload: process added, starting it", "process", p.Name)
				r.Added = append(r.Added, p.Name)
				s.metrics.add(p.Name)
			} else {
				s.metrics.restarts.WithLabelValues(p.Name).Inc()
			}
			c = s.newChild(p, req.bins[p.Name], prev)
			s.launch(c)
		}
		s.children = append(s.children, c)
		s.byName[p.Name] = c
	}
	s.mu.Unlock()
	s.note.notify()
	s.log.Info("config reloaded", "added", strings.Join(r.Added, ","), "removed", strings.Join(r.Removed, ","),
		"restarted", strings.Join(r.Restarted, ","), "unchanged", strings.Join(r.Unchanged, ","), "grace", next.Grace)
	return r
}

// changedKeys returns the YAML keys in which two entries of one process
// differ (defaults filled in both).
func changedKeys(a, b Process) []string {
	var keys []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	t := va.Type()
	for i := range t.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if name == "-" { // the camera's settings (ProducerConfig)
				name = "camera " + a.Camera
			}
			keys = append(keys, name)
		}
	}
	return keys
}
