package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/framehub/framehub/internal/testutil"
)

const waitFor = 10 * time.Second

// TestMain doubles as the children (and the supervisor) of these tests:
// FH_SUP_CHILD selects what this process pretends to be.
func TestMain(m *testing.M) {
	switch os.Getenv("FH_SUP_CHILD") {
	case "":
		os.Exit(m.Run())
	case "serve": // a producer: listens on FH_SOCK after FH_DELAY
		d, _ := time.ParseDuration(os.Getenv("FH_DELAY"))
		time.Sleep(d)
		ln, err := net.Listen("unixpacket", os.Getenv("FH_SOCK"))
		if err != nil {
			os.Exit(3)
		}
		markStart()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_ = c.Close()
			}
		}()
		waitTerm()
		_ = ln.Close()
	case "camera": // a camera's producer: listens on the socket of its -config file
		b, err := os.ReadFile(os.Args[len(os.Args)-1])
		if err != nil {
			os.Exit(3)
		}
		var c struct {
			Socket string `yaml:"socket"`
		}
		if err := yaml.Unmarshal(b, &c); err != nil {
			os.Exit(3)
		}
		ln, err := net.Listen("unixpacket", c.Socket)
		if err != nil {
			os.Exit(3)
		}
		waitTerm()
		_ = ln.Close()
	case "consumer": // records its start time
		markStart()
		fmt.Println("consumer up")
		waitTerm()
	case "crash":
		fmt.Fprintln(os.Stderr, "crashing on purpose")
		os.Exit(7)
	case "stubborn": // ignores SIGTERM; its grandchild too
		signal.Ignore(syscall.SIGTERM)
		gc := exec.Command("sleep", "300")
		_ = gc.Start()
		writeFile(os.Getenv("FH_GRANDCHILD"), strconv.Itoa(gc.Process.Pid))
		markStart()
		select {}
	case "supervisor": // runs a supervisor on FH_CONFIG until killed
		cfg, err := Load(os.Getenv("FH_CONFIG"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		s, err := New(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			os.Exit(2)
		}
		_ = s.Run(context.Background())
	}
	os.Exit(0)
}

func markStart() {
	if f := os.Getenv("FH_MARK"); f != "" {
		writeFile(f, strconv.FormatInt(time.Now().UnixNano(), 10)+" "+strconv.Itoa(os.Getpid()))
	}
}

func writeFile(path, s string) {
	_ = os.WriteFile(path+".tmp", []byte(s), 0o644)
	_ = os.Rename(path+".tmp", path)
}

func waitTerm() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, os.Interrupt)
	<-c
}

// readMark returns the start time and pid a child wrote.
func readMark(t *testing.T, path string) (time.Time, int) {
	t.Helper()
	var b []byte
	require.Eventually(t, func() bool {
		var err error
		b, err = os.ReadFile(path)
		return err == nil
	}, waitFor, 5*time.Millisecond, "no mark at %s", path)
	f := strings.Fields(string(b))
	ns, _ := strconv.ParseInt(f[0], 10, 64)
	pid, _ := strconv.Atoi(f[1])
	return time.Unix(0, ns), pid
}

func proc(name, mode string, env ...string) Process {
	self, _ := os.Executable()
	return Process{Name: name, Binary: self, Env: append([]string{"FH_SUP_CHILD=" + mode}, env...),
		Restart: Restart{BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, StableAfter: time.Second}}
}

func startSupervisor(t *testing.T, cfg Config) (*Supervisor, context.CancelFunc, chan error) {
	t.Helper()
	if cfg.Grace == 0 {
		cfg.Grace = 500 * time.Millisecond
	}
	s, err := New(cfg, testutil.Logger(t, slog.LevelError))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitFor):
			t.Error("supervisor did not stop")
		}
	})
	return s, cancel, done
}

func state(s *Supervisor, name string) ChildStatus {
	for _, c := range s.Status() {
		if c.Name == name {
			return c
		}
	}
	return ChildStatus{}
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func TestStartOrderRestartAndStop(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "p.sock")
	producer := proc("producer", "serve", "FH_SOCK="+sock, "FH_DELAY=300ms", "FH_MARK="+filepath.Join(dir, "producer"))
	producer.ReadySocket = sock
	rec := proc("recorder", "consumer", "FH_MARK="+filepath.Join(dir, "recorder"))
	str := proc("streamer", "consumer", "FH_MARK="+filepath.Join(dir, "streamer"))
	s, cancel, done := startSupervisor(t, Config{Processes: []Process{producer, rec, str}})

	pStart, _ := readMark(t, filepath.Join(dir, "producer"))
	rStart, recPid := readMark(t, filepath.Join(dir, "recorder"))
	_, strPid := readMark(t, filepath.Join(dir, "streamer"))
	require.True(t, rStart.After(pStart), "consumers start once the producer's socket accepts connections")
	require.Eventually(t, func() bool { return state(s, "streamer").State == StateReady }, waitFor, 5*time.Millisecond)

	// kill -9 a consumer: restarted within its backoff, the others untouched.
	require.NoError(t, os.Remove(filepath.Join(dir, "recorder")))
	killed := time.Now()
	require.NoError(t, syscall.Kill(recPid, syscall.SIGKILL))
	_, newPid := readMark(t, filepath.Join(dir, "recorder"))
	require.NotEqual(t, recPid, newPid)
	require.Less(t, time.Since(killed), 2*time.Second)
	require.Equal(t, 1, state(s, "recorder").Restarts)
	require.Equal(t, "killed by SIGKILL", state(s, "recorder").LastExit)
	require.True(t, alive(strPid), "the streamer kept running")
	require.Zero(t, state(s, "streamer").Restarts)

	logs, err := s.Logs("streamer", 10)
	require.NoError(t, err)
	require.Contains(t, logs, "consumer up")

	// Stop: everything gone within the grace period, process groups empty.
	pids := []int{}
	for _, c := range s.Status() {
		pids = append(pids, c.PID)
	}
	stopped := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("supervisor did not stop")
	}
	require.Less(t, time.Since(stopped), 3*time.Second)
	for _, pid := range pids {
		require.ErrorIs(t, syscall.Kill(-pid, 0), syscall.ESRCH, "process group %d is empty", pid)
	}
	for _, c := range s.Status() {
		require.Equal(t, StateStopped, c.State, c.Name)
	}
}

func TestCrashLoopGivesUp(t *testing.T) {
	p := proc("flaky", "crash")
	p.Restart.MaxCrashes = 3
	s, _, _ := startSupervisor(t, Config{Processes: []Process{p}})
	require.Eventually(t, func() bool { return state(s, "flaky").State == StateFailed }, waitFor, 5*time.Millisecond)
	st := state(s, "flaky")
	require.Contains(t, st.Error, "crash loop")
	require.Contains(t, st.Error, "exit status 7")
	require.Equal(t, 2, st.Restarts)
	h := httptest.NewServer(s.Handler())
	defer h.Close()
	resp, err := h.Client().Get(h.URL + "/healthz")
	require.NoError(t, err)
	require.Equal(t, 503, resp.StatusCode)
	resp.Body.Close()
	resp, err = h.Client().Get(h.URL + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), `framehub_supervisor_crashes_total{name="flaky"} 3`)
	resp, err = h.Client().Get(h.URL + "/status")
	require.NoError(t, err)
	var sr StatusResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&sr))
	resp.Body.Close()
	require.Equal(t, StateFailed, sr.Processes[0].State)
}

// A child that ignores SIGTERM is killed after the grace period, with its
// own children.
func TestStubbornChildKilledAfterGrace(t *testing.T) {
	dir := t.TempDir()
	p := proc("stubborn", "stubborn", "FH_MARK="+filepath.Join(dir, "m"), "FH_GRANDCHILD="+filepath.Join(dir, "gc"))
	_, cancel, done := startSupervisor(t, Config{Grace: 300 * time.Millisecond, Processes: []Process{p}})
	_, pid := readMark(t, filepath.Join(dir, "m"))
	gcb, err := os.ReadFile(filepath.Join(dir, "gc"))
	require.NoError(t, err)
	gc, _ := strconv.Atoi(string(gcb))
	start := time.Now()
	cancel()
	<-done
	took := time.Since(start)
	require.GreaterOrEqual(t, took, 300*time.Millisecond, "it got its grace period")
	require.Less(t, took, 3*time.Second)
	require.Eventually(t, func() bool { return !alive(pid) && !alive(gc) }, waitFor, 5*time.Millisecond,
		"child %d and grandchild %d are gone", pid, gc)
}

// The supervisor itself is killed with SIGKILL: its children die with it.
func TestNoOrphansWhenSupervisorIsKilled(t *testing.T) {
	dir := t.TempDir()
	self, _ := os.Executable()
	cfgPath := filepath.Join(dir, "g.yaml")
	cfg := fmt.Sprintf("processes:\n  - name: a\n    binary: %s\n    env: [FH_SUP_CHILD=consumer, FH_MARK=%s]\n  - name: b\n    binary: %s\n    env: [FH_SUP_CHILD=consumer, FH_MARK=%s]\n",
		self, filepath.Join(dir, "a"), self, filepath.Join(dir, "b"))
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	sup := exec.Command(self)
	sup.Env = append(os.Environ(), "FH_SUP_CHILD=supervisor", "FH_CONFIG="+cfgPath)
	require.NoError(t, testutil.StartOrphanless(sup))
	_, a := readMark(t, filepath.Join(dir, "a"))
	_, b := readMark(t, filepath.Join(dir, "b"))
	require.NoError(t, sup.Process.Kill())
	_ = sup.Wait()
	require.Eventually(t, func() bool { return !alive(a) && !alive(b) }, waitFor, 5*time.Millisecond,
		"children %d and %d outlived their supervisor", a, b)
}

func TestConfigErrors(t *testing.T) {
	cases := []struct{ name, file, want string }{
		{"unknown key", "processes:\n  - name: a\n    binary: x\n    restart:\n      polcy: never\n", "g.yaml:5: polcy"},
		{"missing binary", "processes:\n  - name: a\n  - name: b\n    binary: \"\"\n", "g.yaml:2: processes.0.binary: must not be empty"},
		{"bad policy", "processes:\n  - name: a\n    binary: x\n    restart: {policy: sometimes}\n", "processes.0.restart.policy"},
		{"after unknown", "processes:\n  - name: a\n    binary: x\n    after: [b]\n", "g.yaml:4: processes.0.after"},
		{"duplicate", "processes:\n  - name: a\n    binary: x\n  - name: a\n    binary: y\n", "g.yaml:4: processes.1.name"},
		{"empty", "grace: 1s\n", "processes: at least one process"},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "g.yaml")
			require.NoError(t, os.WriteFile(p, []byte(ca.file), 0o644))
			_, err := Load(p)
			require.Error(t, err)
			require.Contains(t, err.Error(), ca.want)
		})
	}
	_, err := New(Config{Processes: []Process{{Name: "x", Binary: "no-such-binary-fh"}}}, nil)
	require.ErrorContains(t, err, `"no-such-binary-fh" not found`)
	require.True(t, errors.Is(err, err))
	_ = bufio.NewReader
}

func TestCameraConfigErrors(t *testing.T) {
	cases := []struct{ name, file, want string }{
		{"bad name", "run-dir: /run/fh\ncameras:\n  - name: front\n    source: test\n  - name: Back Yard\n    source: test\n",
			`g.yaml:5: cameras.1.name: camera name "Back Yard" has 'B' at byte 0`},
		{"long name", "run-dir: /run/fh\ncameras:\n  - name: " + strings.Repeat("a", 33) + "\n    source: test\n", "g.yaml:3: cameras.0.name: camera name"},
		{"duplicate", "run-dir: /run/fh\ncameras:\n  - {name: a, source: test}\n  - {name: a, source: test}\n", `g.yaml:4: cameras.1.name: camera "a" is also camera 0`},
		{"no source", "run-dir: /run/fh\ncameras:\n  - name: a\n", `cameras.0.source: camera "a" has no source`},
		{"reserved option", "run-dir: /run/fh\ncameras:\n  - name: a\n    source: test\n    options:\n      socket: /x\n", `g.yaml:6: cameras.0.options.socket`},
		{"relative run-dir", "run-dir: run\ncameras:\n  - {name: a, source: test}\n", `run-dir: "run" must be an absolute path`},
		{"per-camera without cameras", "processes:\n  - name: r\n    binary: x\n    per-camera: true\n", `g.yaml:4: processes.0.per-camera`},
		{"name clash", "run-dir: /run/fh\ncameras:\n  - {name: a, source: test}\nprocesses:\n  - {name: producer.a, binary: x}\n", `two processes are named "producer.a"`},
		{"unknown placeholder", "run-dir: /run/fh\ncameras:\n  - {name: a, source: test}\nprocesses:\n  - name: r\n    binary: x\n    per-camera: true\n    args: [-dir, \"/rec/{camra}\"]\n",
			`g.yaml:8: processes.0.args: unknown placeholder {camra} in "/rec/{camra}"`},
		{"placeholder in a process for all cameras", "run-dir: /run/fh\ncameras:\n  - {name: a, source: test}\nprocesses:\n  - name: s\n    binary: x\n    args: [-socket, \"{socket}\"]\n",
			`g.yaml:5: processes.0.name: process "s" runs once for all cameras: {socket} in "{socket}" has no camera to stand for`},
		{"port out of range", "run-dir: /run/fh\nproducer-admin: \"127.0.0.1:{port:65535}\"\ncameras:\n  - {name: a, source: test}\n  - {name: b, source: test}\n",
			`g.yaml:2: producer-admin: {port:65535}: want {port:N}, N a port number with N + 1 ≤ 65535`},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "g.yaml")
			require.NoError(t, os.WriteFile(p, []byte(ca.file), 0o644))
			_, err := Load(p)
			require.ErrorContains(t, err, ca.want)
		})
	}
}

func TestOneCameraNamedCam(t *testing.T) {
	p := filepath.Join(t.TempDir(), "g.yaml")
	require.NoError(t, os.WriteFile(p, []byte("run-dir: /run/fh\ncameras:\n  - source: test\n"), 0o644))
	cfg, err := Load(p)
	require.NoError(t, err)
	require.Equal(t, "cam", cfg.Cameras[0].Name, "one camera without a name is cam")
	require.Equal(t, "producer.cam", cfg.Processes[0].Name)
	require.NoError(t, os.WriteFile(p, []byte("run-dir: /run/fh\ncameras:\n  - source: test\n  - {name: b, source: test}\n"), 0o644))
	_, err = Load(p)
	require.ErrorContains(t, err, "g.yaml:3: cameras.0.name: camera name must not be empty")
}

func TestCamerasExpand(t *testing.T) {
	p := filepath.Join(t.TempDir(), "g.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`run-dir: /run/fh
cameras:
  - name: front
    source: rtsp://op:s3cret@10.0.0.5/stream1
    options: {rtsp-transport: udp, decoder: none}
  - name: back
    source: test
processes:
  - name: recorder
    binary: framehub-recorder
    per-camera: true
    args: [-socket, "{socket}", -dir, "/var/lib/fh/{camera}", -admin, "unix:{dir}/recorder.admin"]
    admin: "unix:{dir}/recorder.admin"
  - name: streamer
    binary: framehub-streamer
    args: [-rtsp-addr, "127.0.0.1:8554"]
    camera-args: [-camera, "{camera}={socket}"]
  - name: snapshot
    binary: framehub-snapshot
    per-camera: true
    args: [-admin, "127.0.0.1:{port:7740}"]
  - name: web
    binary: framehub-web
    camera-args: [-camera, "name={camera},socket={socket},recordings=/var/lib/fh/{camera},admin={producer-admin}"]
producer-admin: "127.0.0.1:{port:7710}"
`), 0o644))
	cfg, err := Load(p)
	require.NoError(t, err)
	var names []string
	for _, q := range cfg.Processes {
		names = append(names, q.Name)
	}
	require.Equal(t, []string{"producer.front", "producer.back", "recorder.front", "recorder.back", "streamer", "snapshot.front", "snapshot.back", "web"}, names)
	require.Equal(t, []string{"-camera", "name=front,socket=/run/fh/front/framehub.sock,recordings=/var/lib/fh/front,admin=127.0.0.1:7710",
		"-camera", "name=back,socket=/run/fh/back/framehub.sock,recordings=/var/lib/fh/back,admin=127.0.0.1:7711"}, cfg.Processes[7].Args,
		"the browser view's camera list (consumers/web's -camera), from the group's cameras")
	require.Equal(t, "127.0.0.1:7711", cfg.Processes[1].Admin, "{port:N}: N for the first camera, N+1 for the second")
	require.Contains(t, cfg.Processes[1].ProducerConfig, "admin: 127.0.0.1:7711")
	require.Equal(t, []string{"-admin", "127.0.0.1:7741"}, cfg.Processes[6].Args)
	front := cfg.Processes[0]
	require.Equal(t, "front", front.Camera)
	require.Equal(t, []string{"-config", "/run/fh/front/producer.yaml"}, front.Args, "no source (nor its password) on the command line")
	require.Equal(t, "/run/fh/front/framehub.sock", front.ReadySocket)
	require.Contains(t, front.ProducerConfig, "source: rtsp://op:s3cret@10.0.0.5/stream1")
	require.Contains(t, front.ProducerConfig, "rtsp-transport: udp")
	require.Contains(t, front.ProducerConfig, "socket: /run/fh/front/framehub.sock")
	require.Empty(t, front.After)
	rec := cfg.Processes[3]
	require.Equal(t, "back", rec.Camera)
	require.Equal(t, []string{"-socket", "/run/fh/back/framehub.sock", "-dir", "/var/lib/fh/back", "-admin", "unix:/run/fh/back/recorder.admin"}, rec.Args)
	require.Equal(t, "unix:/run/fh/back/recorder.admin", rec.Admin)
	require.Equal(t, []string{"producer.back"}, rec.After, "a camera's recorder waits for its own producer only")
	st := cfg.Processes[4]
	require.Equal(t, []string{"-rtsp-addr", "127.0.0.1:8554", "-camera", "front=/run/fh/front/framehub.sock", "-camera", "back=/run/fh/back/framehub.sock"}, st.Args)
	require.Empty(t, st.After, "the streamer waits for no camera: it serves the others while one is down")

	cs := cameraStatus(cfg)
	require.Equal(t, "rtsp://10.0.0.5/stream1", cs[0].Source, "no credentials in /status")
	require.Equal(t, []string{"producer.front", "recorder.front", "snapshot.front"}, cs[0].Processes)

	again := cfg
	require.NoError(t, again.validate(), "validating an expanded config again changes nothing")
	require.Equal(t, cfg.Processes, again.Processes)
}

// A reload of a camera config: a camera whose options changed restarts its
// producer only; an added camera starts its producer and its per-camera
// processes and restarts the processes for all cameras (their camera-args
// changed); the rest keeps running.
func TestCamerasReload(t *testing.T) {
	t.Setenv("FH_SUP_CHILD", "camera") // the producers' mode; the others set theirs
	self, err := os.Executable()
	require.NoError(t, err)
	run := testutil.ShortDir(t)
	cfg := func(cams ...Camera) Config {
		return Config{RunDir: run, ProducerBinary: self, Cameras: cams, Processes: []Process{
			{Name: "rec", Binary: self, Env: []string{"FH_SUP_CHILD=consumer"}, PerCamera: true, Args: []string{"-socket", "{socket}"}},
			{Name: "str", Binary: self, Env: []string{"FH_SUP_CHILD=consumer"}, CameraArgs: []string{"-camera", "{camera}={socket}"}},
		}}
	}
	a, b := Camera{Name: "a", Source: "test"}, Camera{Name: "b", Source: "test"}
	s, _, _ := startSupervisor(t, cfg(a, b))
	allReady := func(names ...string) map[string]int {
		pids := map[string]int{}
		require.Eventually(t, func() bool {
			for _, n := range names {
				st := state(s, n)
				if st.State != StateReady {
					return false
				}
				pids[n] = st.PID
			}
			return true
		}, waitFor, 10*time.Millisecond, "%v ready", names)
		return pids
	}
	before := allReady("producer.a", "producer.b", "rec.a", "rec.b", "str")
	require.Equal(t, "b", state(s, "rec.b").Camera)

	a2 := a
	a2.Options = map[string]any{"rtsp-transport": "udp"}
	r, err := s.Reload(context.Background(), cfg(a2, b))
	require.NoError(t, err)
	require.Equal(t, []string{"producer.a"}, r.Restarted)
	require.Empty(t, r.Added)
	after := allReady("producer.a", "producer.b", "rec.a", "rec.b", "str")
	require.NotEqual(t, before["producer.a"], after["producer.a"])
	for _, n := range []string{"producer.b", "rec.a", "rec.b", "str"} {
		require.Equal(t, before[n], after[n], "%s untouched", n)
	}
	b2, err := os.ReadFile(filepath.Join(run, "a", "producer.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(b2), "rtsp-transport: udp", "the new options are in the producer's config file")

	c := Camera{Name: "c", Source: "test"}
	r, err = s.Reload(context.Background(), cfg(a2, b, c))
	require.NoError(t, err)
	require.Equal(t, []string{"producer.c", "rec.c"}, r.Added)
	require.Equal(t, []string{"str"}, r.Restarted)
	again := allReady("producer.a", "producer.b", "producer.c", "rec.a", "rec.b", "rec.c", "str")
	for _, n := range []string{"producer.a", "producer.b", "rec.a", "rec.b"} {
		require.Equal(t, after[n], again[n], "%s untouched", n)
	}
}
