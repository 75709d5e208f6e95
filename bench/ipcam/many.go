package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/framehub/framehub/internal/supervisor"
	"github.com/framehub/framehub/internal/sysinfo"
	"github.com/framehub/framehub/internal/testutil/ipcam"
)

// manyResult is one run of a group of n cameras.
type manyResult struct {
	Cameras int `json:"cameras"`
	Run     int `json:"run"`
	// CPU in % of one core over the window, by role: every producer, every
	// recorder, the streamer, the supervisor; and all of them.
	ProducerCPU   float64 `json:"producer_cpu_percent"`
	RecorderCPU   float64 `json:"recorder_cpu_percent"`
	StreamerCPU   float64 `json:"streamer_cpu_percent"`
	SupervisorCPU float64 `json:"supervisor_cpu_percent"`
	TotalCPU      float64 `json:"total_cpu_percent"`
	// RSS in MiB at the end of the window, by role and in all.
	ProducerRSS   float64 `json:"producer_rss_mib"`
	RecorderRSS   float64 `json:"recorder_rss_mib"`
	StreamerRSS   float64 `json:"streamer_rss_mib"`
	SupervisorRSS float64 `json:"supervisor_rss_mib"`
	TotalRSS      float64 `json:"total_rss_mib"`
	// PSS in MiB (/proc/PID/smaps_rollup): RSS with each shared page (the
	// libraries, the h264 slabs a consumer maps too) divided among the
	// processes that map it, so that the sum over processes counts it once.
	ProducerPSS   float64 `json:"producer_pss_mib"`
	RecorderPSS   float64 `json:"recorder_pss_mib"`
	StreamerPSS   float64 `json:"streamer_pss_mib"`
	SupervisorPSS float64 `json:"supervisor_pss_mib"`
	TotalPSS      float64 `json:"total_pss_mib"`
	// FPS is the lowest camera's rate of access units through its
	// producer over the window.
	MinFPS float64 `json:"min_h264_fps"`
	Busy   float64 `json:"machine_busy"`
	Steal  float64 `json:"machine_steal"`
}

// measureGroup runs framehub-supervisor with a group of n cameras (each
// a stand-in camera of urls, with its producer and recorder; one streamer
// for all) and measures every process of the group over window, after
// warmup.
func measureGroup(bin string, urls []string, warmup, window time.Duration) (manyResult, error) {
	n := len(urls)
	dir, err := os.MkdirTemp("", "fh-bench-many-")
	if err != nil {
		return manyResult{}, err
	}
	defer os.RemoveAll(dir)
	supAdmin := "unix:" + filepath.Join(dir, "sup.admin")
	tokenFile := filepath.Join(dir, "admin.token")
	var b strings.Builder
	fmt.Fprintf(&b, "admin: %q\ngrace: 3s\nrun-dir: %q\ncameras:\n", supAdmin, filepath.Join(dir, "run"))
	for i, u := range urls {
		fmt.Fprintf(&b, "  - name: cam%d\n    source: %q\n", i+1, u)
	}
	fmt.Fprintf(&b, `processes:
  - name: recorder
    binary: %[1]s/framehub-recorder
    per-camera: true
    args: [-socket, "{socket}", -dir, "%[2]s/rec/{camera}", -admin, "unix:{dir}/recorder.admin", -log-level, warn]
  - name: streamer
    binary: %[1]s/framehub-streamer
    args: [-rtsp-addr, "127.0.0.1:0", -udp-rtp-addr, "", -admin, "", -log-level, warn]
    camera-args: [-camera, "{camera}={socket}"]
`, bin, dir)
	cfg := filepath.Join(dir, "group.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		return manyResult{}, err
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return manyResult{}, err
	}
	cmd := exec.Command(filepath.Join(abs, "framehub-supervisor"), "-config", cfg, "-log-level", "warn")
	cmd.Env = append(os.Environ(), "FRAMEHUB_ADMIN_TOKEN_FILE="+tokenFile)
	// The group's output (each child's lines) goes to a file, shown when
	// the group does not come up.
	logFile, err := os.Create(filepath.Join(dir, "supervisor.log"))
	if err != nil {
		return manyResult{}, err
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return manyResult{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()

	// Every process ready and every camera streaming.
	status := func() (supervisor.StatusResponse, error) {
		tok, err := os.ReadFile(tokenFile)
		if err != nil {
			return supervisor.StatusResponse{}, err
		}
		body, err := adminGet(supAdmin, "/status", strings.TrimSpace(string(tok)))
		if err != nil {
			return supervisor.StatusResponse{}, err
		}
		var st supervisor.StatusResponse
		return st, json.Unmarshal(body, &st)
	}
	producers := make([]*metrics, n)
	for i := range n {
		producers[i] = unixMetrics(filepath.Join(dir, "run", fmt.Sprintf("cam%d", i+1), "producer.admin"))
	}
	deadline := time.Now().Add(60 * time.Second)
	var st supervisor.StatusResponse
	for {
		st, err = status()
		ready := err == nil && len(st.Processes) == 2*n+1
		for _, p := range st.Processes {
			ready = ready && p.State == supervisor.StateReady
		}
		for _, m := range producers {
			ready = ready && m.get()["framehub_producer_camera_connected"] == 1
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logFile.Name())
			return manyResult{}, fmt.Errorf("%d cameras: not every process ready and camera connected within 60 s (%v); the group's output:\n%s",
				n, err, out[max(0, len(out)-4000):])
		}
		time.Sleep(200 * time.Millisecond) // polling processes we do not own the events of
	}
	time.Sleep(warmup)

	type proc struct {
		role string
		pid  int
	}
	procs := []proc{{"supervisor", cmd.Process.Pid}}
	for _, p := range st.Processes {
		role, _, _ := strings.Cut(p.Name, ".")
		procs = append(procs, proc{role, p.PID})
	}
	cpu0 := make([]int64, len(procs))
	for i, p := range procs {
		if cpu0[i], err = sysinfo.ProcCPU(p.pid); err != nil {
			return manyResult{}, fmt.Errorf("%s (pid %d): %w", p.role, p.pid, err)
		}
	}
	const h264 = `framehub_producer_frames_total{stream="h264"}`
	f0 := make([]float64, n)
	for i, m := range producers {
		f0[i] = m.get()[h264]
	}
	tk0, err := sysinfo.ReadCPUTicks()
	if err != nil {
		return manyResult{}, err
	}
	t0 := time.Now()
	time.Sleep(window)
	wall := time.Since(t0).Seconds()
	tk1, err := sysinfo.ReadCPUTicks()
	if err != nil {
		return manyResult{}, err
	}
	res := manyResult{Cameras: n, MinFPS: -1}
	res.Busy, res.Steal = tk1.Share(tk0)
	for i, m := range producers {
		fps := (m.get()[h264] - f0[i]) / wall
		if res.MinFPS < 0 || fps < res.MinFPS {
			res.MinFPS = fps
		}
	}
	for i, p := range procs {
		c1, err := sysinfo.ProcCPU(p.pid)
		if err != nil {
			return manyResult{}, fmt.Errorf("%s (pid %d) gone during the window: %w", p.role, p.pid, err)
		}
		cpu := 100 * float64(c1-cpu0[i]) / 1e9 / wall
		rss := float64(sysinfo.RSSKiB(p.pid)) / 1024
		pss, err := pssMiB(p.pid)
		if err != nil {
			return manyResult{}, fmt.Errorf("%s (pid %d): %w", p.role, p.pid, err)
		}
		switch p.role {
		case "producer":
			res.ProducerCPU, res.ProducerRSS, res.ProducerPSS = res.ProducerCPU+cpu, res.ProducerRSS+rss, res.ProducerPSS+pss
		case "recorder":
			res.RecorderCPU, res.RecorderRSS, res.RecorderPSS = res.RecorderCPU+cpu, res.RecorderRSS+rss, res.RecorderPSS+pss
		case "streamer":
			res.StreamerCPU, res.StreamerRSS, res.StreamerPSS = res.StreamerCPU+cpu, res.StreamerRSS+rss, res.StreamerPSS+pss
		case "supervisor":
			res.SupervisorCPU, res.SupervisorRSS, res.SupervisorPSS = res.SupervisorCPU+cpu, res.SupervisorRSS+rss, res.SupervisorPSS+pss
		}
		res.TotalCPU, res.TotalRSS, res.TotalPSS = res.TotalCPU+cpu, res.TotalRSS+rss, res.TotalPSS+pss
	}
	return res, nil
}

// pssMiB reads a process's proportional set size.
func pssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			var kib float64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%f kB", &kib); err != nil {
				return 0, fmt.Errorf("smaps_rollup: %q: %w", line, err)
			}
			return kib / 1024, nil
		}
	}
	return 0, fmt.Errorf("no Pss line in /proc/%d/smaps_rollup", pid)
}

// startCameras starts n stand-in cameras serving s; close them with the
// returned function.
func startCameras(s *ipcam.Stream, n int) ([]string, func(), error) {
	var cams []*ipcam.Camera
	closeAll := func() {
		for _, c := range cams {
			c.Close()
		}
	}
	var urls []string
	for range n {
		c, err := ipcam.Start(ipcam.Config{Stream: s, Params: ipcam.ParamsInBand})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		cams = append(cams, c)
		urls = append(urls, c.URL("", ""))
	}
	return urls, closeAll, nil
}

// adminGet GETs path of a daemon's admin API on a Unix socket.
func adminGet(addr, path, token string) ([]byte, error) {
	m := unixMetrics(strings.TrimPrefix(addr, "unix:"))
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://admin"+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := m.c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s", addr, path, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	return body, err
}

// manyReport renders the many-camera section.
func manyReport(p partFile[manyResult]) string {
	cmdline, runs, window, kbps, results := p.Command, p.Runs, p.Window, p.Kbps, p.Results
	var b strings.Builder
	fmt.Fprintf(&b, "\n# Many cameras in one group: cost growth\n\n")
	fmt.Fprintf(&b, "Produced by `%s` on %s. Medians over %d runs of a %s window per group size, the sizes interleaved.\n\n", cmdline, p.Date, runs, window)
	fmt.Fprintf(&b, "framehub-supervisor runs a group config listing N cameras (`cameras:`), each a stand-in camera of the "+
		"benchmark process serving the same 1920×1080 30 fps x264 stream as above (%.0f kbit/s) over RTSP/TCP: per camera "+
		"a framehub-producer (`-source rtsp://…`, passthrough, no raw consumer) and a framehub-recorder (`per-camera: true`, "+
		"MP4 segments of 1 min in a directory per camera), and one framehub-streamer serving every camera "+
		"(`camera-args: [-camera, \"{camera}={socket}\"]`, no viewer). **CPU** is every process's own (all threads, "+
		"/proc/PID/task/*/schedstat) over the window, in %% of one core; **PSS** and **RSS** at the window's end. The "+
		"stand-in cameras are not counted.%s\n\n", kbps, warmupNote(p.Warmup))
	sizes := []int{}
	for _, r := range results {
		if !slices.Contains(sizes, r.Cameras) {
			sizes = append(sizes, r.Cameras)
		}
	}
	slices.Sort(sizes)
	fmt.Fprintf(&b, "| cameras | total CPU (%% of a core) | CPU per camera | producers | recorders | streamer | supervisor | "+
		"total PSS (MiB) | PSS per camera | producers' PSS | recorders' PSS | streamer PSS | supervisor PSS | total RSS (MiB) | slowest camera (fps) | machine busy |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	type row struct{ cpu, pss float64 }
	med := map[int]row{}
	for _, n := range sizes {
		var v [15][]float64
		for _, r := range results {
			if r.Cameras != n {
				continue
			}
			for i, x := range []float64{r.TotalCPU, r.TotalCPU / float64(n), r.ProducerCPU, r.RecorderCPU, r.StreamerCPU, r.SupervisorCPU,
				r.TotalPSS, r.TotalPSS / float64(n), r.ProducerPSS, r.RecorderPSS, r.StreamerPSS, r.SupervisorPSS, r.TotalRSS, r.MinFPS, 100 * r.Busy} {
				v[i] = append(v[i], x)
			}
		}
		med[n] = row{median(v[0]), median(v[6])}
		fmt.Fprintf(&b, "| %d | **%.1f** | **%.2f** | %.1f | %.1f | %.1f | %.1f | **%.0f** | **%.1f** | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f | %.0f%% |\n", n,
			median(v[0]), median(v[1]), median(v[2]), median(v[3]), median(v[4]), median(v[5]),
			median(v[6]), median(v[7]), median(v[8]), median(v[9]), median(v[10]), median(v[11]), median(v[12]), median(v[13]), median(v[14]))
	}
	if len(sizes) >= 2 {
		lo, hi := sizes[0], sizes[len(sizes)-1]
		dc := (med[hi].cpu - med[lo].cpu) / float64(hi-lo)
		dr := (med[hi].pss - med[lo].pss) / float64(hi-lo)
		fmt.Fprintf(&b, "\nGrowth from %d to %d cameras: **%.2f%% of a core and %.0f MiB (PSS) per added camera** (its producer, "+
			"its recorder and its share of the streamer), on this 2-vCPU machine. RSS counts each shared page once per process that "+
			"maps it (the GStreamer and Go libraries every producer maps, the h264 slabs a recorder maps too); PSS divides it among "+
			"them, so that the sum is what the group costs the machine.\n", lo, hi, dc, dr)
	}
	var slow []string
	for _, r := range results {
		if r.MinFPS < 29 {
			slow = append(slow, fmt.Sprintf("run %d of %d cameras (%.1f fps, machine %.0f%% busy)", r.Run, r.Cameras, r.MinFPS, 100*r.Busy))
		}
	}
	if len(slow) > 0 {
		fmt.Fprintf(&b, "\nA camera fell below 29 fps in %s: the stand-in cameras run in the benchmark process, which competes "+
			"with whatever else runs on the machine (the busy share counts every process).\n", strings.Join(slow, ", "))
	}
	fmt.Fprintf(&b, "\n## Every run (many cameras)\n\n| run | cameras | total CPU | producers | recorders | streamer | supervisor | total PSS (MiB) | total RSS (MiB) | slowest fps | machine busy | steal |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %d | %d | %.1f%% | %.1f%% | %.1f%% | %.1f%% | %.1f%% | %.0f | %.0f | %.1f | %.0f%% | %.1f%% |\n", r.Run, r.Cameras, r.TotalCPU,
			r.ProducerCPU, r.RecorderCPU, r.StreamerCPU, r.SupervisorCPU, r.TotalPSS, r.TotalRSS, r.MinFPS, 100*r.Busy, 100*r.Steal)
	}
	return b.String()
}
