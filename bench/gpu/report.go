package main

import (
	"fmt"
	"io"
	"math"
	"slices"
)

// pct returns the p-th percentile (0..100) of v, nearest rank; NaN for none.
func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// printReport writes the report's figures as markdown tables.
func printReport(w io.Writer, r *report) {
	c := r.Config
	fmt.Fprintf(w, "# framehub cuda surfaces, %s\n\n", r.Date)
	fmt.Fprintf(w, "- device: %s (%s), compute %d.%d, %.0f GiB, VMM %v, POSIX fd %v, DMA-BUF %v; driver CUDA %d.%d (%s)\n",
		r.Device.Name, r.Device.UUID, r.Device.Major, r.Device.Minor, float64(r.Device.TotalMem)/(1<<30),
		r.Device.VMM, r.Device.PosixFD, r.Device.DMABuf, r.Driver/1000, r.Driver%1000/10, r.Library)
	fmt.Fprintf(w, "- host: %s\n", r.Machine)
	fmt.Fprintf(w, "- %dx%d NV12 at %.0f fps to %d consumers (budget %d each), window %.0f s, sched %s, %s\n\n",
		c.Width, c.Height, c.FPS, c.Consumers, c.Budget, c.WindowS, c.Sched, c.Kernels)

	f := r.Fanout
	fmt.Fprintf(w, "## Fan-out\n\n")
	fmt.Fprintf(w, "Producer: %d frames in %.1f s (%.2f fps); CPU %.1f µs per frame; GPU render (launch to sync) mean %.1f µs, max %.1f µs.\n",
		f.Published, f.WindowS, float64(f.Published)/f.WindowS, f.ProducerCPUUS, f.RenderMeanUS, f.RenderMaxUS)
	fmt.Fprintf(w, "Whole run: %d published, %d delivered, %d skipped at budget, %d skipped (socket full), %d dropped (pool exhausted).\n\n",
		f.PublishedTotal, f.Delivered, f.SkippedBudget, f.SkippedSocket, f.DroppedExhausted)
	fmt.Fprintf(w, "| consumer | received | verified | failed | dropped | window frames | CPU µs/frame | imports | import µs p50 (max) | verify µs p50/p99 | latency µs p50/p99 | host bytes/frame | max RSS MiB |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, k := range f.Consumers {
		cpu := math.NaN()
		if k.WindowFrames > 0 {
			cpu = k.WindowCPUUS / float64(k.WindowFrames)
		}
		hb := 0.0
		if k.Received > 0 {
			hb = float64(k.HostBytes) / float64(k.Received)
		}
		fmt.Fprintf(w, "| pid %d | %d | %d | %d | %d | %d | %.1f | %d | %.0f (%.0f) | %.0f / %.0f | %.0f / %.0f | %.0f | %.1f |\n",
			k.PID, k.Received, k.Verified, k.Failed, k.Dropped, k.WindowFrames, cpu, k.Imports,
			pct(k.ImportUS, 50), pct(k.ImportUS, 100), pct(k.VerifyUS, 50), pct(k.VerifyUS, 99),
			pct(k.LatencyUS, 50), pct(k.LatencyUS, 99), hb, float64(k.MaxRSSKB)/1024)
		if k.FirstErr != "" {
			fmt.Fprintf(w, "|  | first failure: %s |\n", k.FirstErr)
		}
	}

	fmt.Fprintf(w, "\n## Consumer killed with SIGKILL while holding leases\n\n")
	var ms []float64
	for _, k := range r.Kill.Runs {
		ms = append(ms, k.ReclaimMS)
	}
	fmt.Fprintf(w, "%d runs, %d leases held each: session ended and leases released after %.2f ms median, %.2f ms max (all: %.2f ms). The verifying consumers went on meanwhile (%d frames published during the kills).\n",
		len(r.Kill.Runs), leases(r.Kill.Runs), pct(ms, 50), pct(ms, 100), ms, r.Kill.PublishedDuring)

	if s := r.Survive; s != nil {
		fmt.Fprintf(w, "\n## Producer killed with SIGKILL while a consumer holds a frame\n\n")
		fmt.Fprintf(w, "Held frame %d; the consumer saw: %s. Verified on the GPU after the producer's death: %s. Surfaces mapped after the death: %d; after the release: %d (unmapped %d).\n",
			s.HeldSeq, s.Disconnect, s.AfterDeath, s.MappedAfterDeath, s.MappedAtEnd, s.UnmappedAtEnd)
	}
	if d := r.DMABuf; d != nil {
		fmt.Fprintf(w, "\n## DMA-BUF export of the same memory\n\n")
		fmt.Fprintf(w, "%d frames received; surface kind %s, no_cpu_map %v, exporter %q.\n", d.Received, d.SurfaceKind, d.NoCPUMap, d.ExpName)
		fmt.Fprintf(w, "- sdk Frame.Plane: %s\n- raw mmap of the fd: %s\n- sdk/cuda import: %s\n", d.PlaneErr, d.MmapErr, d.ImportErr)
	}
}

func leases(rs []killRun) int {
	if len(rs) == 0 {
		return 0
	}
	return rs[0].Leases
}
