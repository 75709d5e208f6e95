// Package sysinfo reads what the benchmark and soak reports say about the
// machine and about the processes they measure: CPU model, kernel, Go and
// GStreamer versions, a process's CPU time, resident memory and state, all
// from /proc.
package sysinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Machine describes this machine as a Markdown list: CPU, kernel, Go,
// memory and GStreamer version.
func Machine() string {
	var w strings.Builder
	fmt.Fprintf(&w, "- CPU: %s, %d logical cores\n- Kernel: Linux %s\n- Go: %s\n", CPUModel(), runtime.NumCPU(), Kernel(), runtime.Version())
	if mem := meminfo("MemTotal"); mem != "" {
		fmt.Fprintf(&w, "- Memory: %s\n", mem)
	}
	fmt.Fprintf(&w, "- GStreamer: %s\n", GStreamerVersion())
	return w.String()
}

// Summary is Machine on one line.
func Summary() string {
	return fmt.Sprintf("%d × %s, Linux %s, %s, %s", runtime.NumCPU(), CPUModel(), Kernel(), runtime.Version(), GStreamerVersion())
}

// CPUModel is the first "model name" of /proc/cpuinfo.
func CPUModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// Kernel is the kernel release (uname -r).
func Kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "?"
	}
	return string(bytes.TrimRight(u.Release[:], "\x00"))
}

func meminfo(key string) string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// GStreamerVersion is what gst-launch-1.0 --version reports ("GStreamer
// 1.22.0"), or why it cannot tell.
func GStreamerVersion() string {
	out, err := exec.Command("gst-launch-1.0", "--version").Output()
	if err != nil {
		return "no gst-launch-1.0"
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "GStreamer") {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(string(out))
}

// ProcCPU is the CPU time of every thread of pid, in ns, summed from
// /proc/PID/task/*/schedstat (exact, unlike the tick-based /proc/PID/stat).
func ProcCPU(pid int) (int64, error) {
	return sumTasks(pid, "schedstat", "CPU time", func(b string) (int64, error) {
		if f := strings.Fields(b); len(f) > 0 {
			return strconv.ParseInt(f[0], 10, 64)
		}
		return 0, nil
	})
}

// ProcSwitches is the number of context switches (voluntary and not) of
// every live thread of pid, from /proc/PID/task/*/status: how often the
// process was put to sleep and woken, which on a VM costs more than most
// of what it does per frame.
func ProcSwitches(pid int) (int64, error) {
	return sumTasks(pid, "status", "context switches", func(b string) (int64, error) {
		var n int64
		for _, l := range strings.Split(b, "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok || !strings.HasSuffix(k, "ctxt_switches") {
				continue
			}
			c, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, err
			}
			n += c
		}
		return n, nil
	})
}

// sumTasks sums count over the file name of every live thread of pid
// (/proc/PID/task/*/name); what names the figure in errors. A thread that
// exits meanwhile is skipped.
func sumTasks(pid int, name, what string, count func(string) (int64, error)) (int64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, fmt.Errorf("%s of pid %d: %w", what, pid, err)
	}
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/%s", pid, t.Name(), name))
		if err != nil {
			continue // the thread exited
		}
		n, err := count(string(b))
		if err != nil {
			return 0, fmt.Errorf("%s of pid %d: %s %q: %w", what, pid, name, b, err)
		}
		total += n
	}
	return total, nil
}

// StatusField is a field of /proc/PID/status ("" when pid is gone).
func StatusField(pid int, key string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// RSSKiB is VmRSS of pid in KiB (-1 when pid is gone).
func RSSKiB(pid int) int64 {
	v, err := strconv.ParseInt(strings.TrimSuffix(StatusField(pid, "VmRSS"), " kB"), 10, 64)
	if err != nil {
		return -1
	}
	return v
}

// FDCount is the number of open fds of pid (-1 when it is gone).
func FDCount(pid int) int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(es)
}

// CPUTicks is the machine's CPU time from /proc/stat's "cpu" line, summed
// over CPUs, in clock ticks. Two reads bracket a window; Share says how the
// window's CPU time was spent.
type CPUTicks struct {
	// Idle is idle plus iowait: time no process here wanted a CPU.
	Idle int64
	// Steal is time the hypervisor ran something else while this VM
	// wanted to run: a noisy host, which no process here can be blamed for.
	Steal int64
	// Total is every state (guest time is already counted in user).
	Total int64
}

// ReadCPUTicks reads the machine's CPU time counters.
func ReadCPUTicks() (CPUTicks, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPUTicks{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return CPUTicks{}, fmt.Errorf("/proc/stat: first line %q is not the cpu summary", line)
	}
	// user nice system idle iowait irq softirq steal [guest guest_nice]
	var v [9]int64
	for i := 1; i <= 8; i++ {
		if v[i], err = strconv.ParseInt(f[i], 10, 64); err != nil {
			return CPUTicks{}, fmt.Errorf("/proc/stat: cpu field %d %q: %w", i, f[i], err)
		}
	}
	c := CPUTicks{Idle: v[4] + v[5], Steal: v[8]}
	for _, x := range v[1:] {
		c.Total += x
	}
	return c, nil
}

// HeavySteal is the share of the machine's CPU time taken by the hypervisor
// (/proc/stat steal) at which a measurement window says more about the host
// than about the code measured: on a shared VM a noisy neighbour can take
// most of both vCPUs for seconds (observed: 60–100%). Tests that judge a
// rate skip or relax such windows; benchmarks count them in their reports.
const HeavySteal = 0.20

// StarvedBusy is the share of the machine's CPU time, busy or stolen, at
// which a measurement window is starved when processes outside the test
// took at least StarvedOthers of it: the machine had no CPU left to give
// (other test packages' processes run alongside, x264 and GStreamer
// clients among them), so an absolute rate measured in it says nothing
// about the code measured.
const StarvedBusy = 0.90

// StarvedOthers is the share of the machine's CPU time (half a CPU of two)
// that processes outside the test must have taken for a busy window to be
// starved. A machine made busy by the test's own processes (a flooding
// consumer, the producer under test) is no excuse: keeping its rate under
// that load is what such a test checks.
const StarvedOthers = 0.25

// Starved is the machine-busy rule every rate check of the tests applies:
// for a window whose busy and stolen shares are busy and steal (see Share),
// of which others was taken by processes outside the test, it says why an
// absolute rate measured in it cannot be judged (at least HeavySteal
// stolen by the host; or at least StarvedBusy busy, at least StarvedOthers
// by other processes), with the measured shares, or "" when the machine
// had CPU to spare. Relative checks (a consumer against the rate the
// producer really published) stay valid in a starved window; only
// absolute ones are not.
//
// The chaos suite applies HeavySteal alone: there the load on the machine
// is the supervised group under test, whose rate is what it judges.
func Starved(busy, others, steal float64) string {
	switch {
	case steal >= HeavySteal:
		return fmt.Sprintf("the host stole %.0f%% of the machine's CPU time (≥ %.0f%%; %.0f%% busy)", 100*steal, 100*HeavySteal, 100*busy)
	case busy >= StarvedBusy && others >= StarvedOthers:
		return fmt.Sprintf("the machine was %.0f%% busy (≥ %.0f%%), %.0f%% of it by processes outside the test (≥ %.0f%%): they took the CPU",
			100*busy, 100*StarvedBusy, 100*others, 100*StarvedOthers)
	}
	return ""
}

// TreeCPU is the CPU time, in ns, of process root and of every process
// descending from it, read from /proc now: each live one's (see ProcCPU),
// plus what the exited ones used once their parent in the tree waited for
// them (cutime and cstime, to the tick). A process that exits while it
// reads, or that exited and was not waited for yet, is left out.
func TreeCPU(root int) (int64, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("CPU time of the processes under pid %d: %w", root, err)
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok && st.ppid > 0 {
			children[st.ppid] = append(children[st.ppid], pid)
		}
	}
	total, err := ProcCPU(root)
	if err != nil {
		return 0, err
	}
	for todo := []int{root}; len(todo) > 0; {
		pid := todo[len(todo)-1]
		todo = append(todo[:len(todo)-1], children[pid]...)
		if pid != root {
			ns, err := ProcCPU(pid)
			if err != nil {
				continue
			}
			total += ns
		}
		if st, ok := readStat(pid); ok {
			total += st.waitedTicks * int64(time.Second/ClockTicks)
		}
	}
	return total, nil
}

// procStat holds the fields of /proc/PID/stat that TreeCPU reads.
type procStat struct {
	ppid        int
	waitedTicks int64 // cutime + cstime: the waited-for children's CPU time
}

// readStat reads /proc/PID/stat; false when pid is gone. The fields follow
// the command name, which may hold spaces and parentheses: they are read
// after the last ')'.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	// state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	// cmajflt utime stime cutime cstime ...
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, false
	}
	var st procStat
	st.ppid, _ = strconv.Atoi(f[1])
	cu, _ := strconv.ParseInt(f[13], 10, 64)
	cs, _ := strconv.ParseInt(f[14], 10, 64)
	st.waitedTicks = cu + cs
	return st, true
}

// ClockTicks is the unit of /proc/stat (USER_HZ), which Linux fixes at 100
// per second for user space whatever the kernel's own tick rate.
const ClockTicks = 100

// Share returns, for the window from prev to c, the share of the machine's
// CPU time that was busy (neither idle nor iowait: processes here and
// steal) and the share stolen by the host. Both are 0 for an empty window.
func (c CPUTicks) Share(prev CPUTicks) (busy, steal float64) {
	d := float64(c.Total - prev.Total)
	if d <= 0 {
		return 0, 0
	}
	return 1 - float64(c.Idle-prev.Idle)/d, float64(c.Steal-prev.Steal) / d
}
