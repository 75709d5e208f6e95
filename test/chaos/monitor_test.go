package chaos

import (
	"context"
	"sync"
	"time"

	"github.com/framehub/framehub/internal/sysinfo"
	"github.com/framehub/framehub/test/internal/grouptest"
)

// sample is what the monitor reads every second.
type sample struct {
	at     time.Time
	ok     bool    // the producer's metrics were read
	frames float64 // the producer's raw frames_total
	pid    int     // the producer's
	leases float64 // live leases, all streams
	held   float64 // GStreamer buffers held for leases
	pids   map[string]int
	rss    map[string]int // KiB
	fds    map[string]int
	// The machine's CPU time counters.
	cpu sysinfo.CPUTicks
}

type window struct {
	from, to time.Time
	why      string
}

// monitor samples the group every second until stopped.
type monitor struct {
	mu       sync.Mutex
	samples  []sample
	excluded []window // no frame-rate judgement here (producer restarts)
}

func (m *monitor) run(ctx context.Context, g *grouptest.Group) {
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		m.sampleOnce(g)
	}
}

func (m *monitor) sampleOnce(g *grouptest.Group) {
	pids := map[string]int{"supervisor": g.Sup.Process.Pid}
	for _, p := range g.Status() {
		pids[p.Name] = p.PID
	}
	s := sample{at: time.Now(), pids: pids, rss: map[string]int{}, fds: map[string]int{}}
	s.cpu, _ = sysinfo.ReadCPUTicks()
	s.pid = pids["producer"]
	if ms, err := g.Scrape(g.ProdAdmin); err == nil && s.pid != 0 {
		var ok bool
		s.frames, ok = ms.Sum("framehub_producer_frames_total", map[string]string{"stream": "raw"})
		s.leases, _ = ms.Sum("framehub_producer_leases", nil)
		s.held, _ = ms.Sum("framehub_producer_held_buffers", nil)
		// A producer restarted between the two reads is not this pid's.
		s.ok = ok && g.Proc("producer").PID == s.pid
	}
	for name, pid := range pids {
		if pid > 0 {
			s.rss[name], s.fds[name] = int(sysinfo.RSSKiB(pid)), sysinfo.FDCount(pid)
		}
	}
	m.mu.Lock()
	m.samples = append(m.samples, s)
	m.mu.Unlock()
}

func (m *monitor) exclude(from, to time.Time, why string) {
	m.mu.Lock()
	m.excluded = append(m.excluded, window{from, to, why})
	m.mu.Unlock()
}

func (m *monitor) snapshot() []sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]sample(nil), m.samples...)
}

// rateStats are the producer's frame rates over the run.
type rateStats struct {
	windowed []float64 // over each fpsWindow judged
	min1     float64   // the lowest 1-sample rate judged (for the log)
	// stolen counts the windows not judged because the hypervisor took
	// more than maxSteal of the machine; worstSteal is the largest share.
	stolen     int
	worstSteal float64
}

// rates returns the producer's frame rate over each fpsWindow of
// consecutive samples of the same producer that overlaps no excluded
// window and in which the host left this VM its CPUs (steal ≤ maxSteal).
func (m *monitor) rates() rateStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := rateStats{min1: 1e9}
	ok := func(a, b sample) bool {
		if !a.ok || !b.ok || a.pid != b.pid || b.frames < a.frames {
			return false
		}
		for _, w := range m.excluded {
			if a.at.Before(w.to) && b.at.After(w.from) {
				return false
			}
		}
		return true
	}
	steal := func(a, b sample) float64 {
		_, st := b.cpu.Share(a.cpu)
		return st
	}
	for i := 1; i < len(m.samples); i++ {
		a, b := m.samples[i-1], m.samples[i]
		if ok(a, b) && steal(a, b) <= maxSteal {
			r.min1 = min(r.min1, (b.frames-a.frames)/b.at.Sub(a.at).Seconds())
		}
		if i >= fpsWindow {
			a := m.samples[i-fpsWindow]
			if !ok(a, b) {
				continue
			}
			if st := steal(a, b); st > maxSteal {
				r.stolen++
				r.worstSteal = max(r.worstSteal, st)
				continue
			}
			r.windowed = append(r.windowed, (b.frames-a.frames)/b.at.Sub(a.at).Seconds())
		}
	}
	return r
}
