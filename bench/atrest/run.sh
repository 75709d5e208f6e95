#!/bin/bash
# The producer at rest against GStreamer's shmsink: the same source
# (videotestsrc pattern=black, 1920x1080 NV12 at 30 fps, is-live), no
# consumer, no encoder. Each system runs alone for SECONDS after a 3 s
# warm-up, alternating, REPEATS times; the CPU of the whole process
# (utime + stime from /proc/PID/stat) and its context switches (all
# threads) are printed per run, then the medians.
#
#   bench/atrest/run.sh [-seconds 15] [-repeats 5] BIN [BIN_BEFORE]
#
# BIN is a directory with framehub-producer; BIN_BEFORE, when given, one
# with the framehub-producer of another build, measured in the same rounds.
set -euo pipefail
secs=15
reps=5
while [[ $# -gt 0 && $1 == -* ]]; do
	case $1 in
	-seconds) secs=$2; shift 2 ;;
	-repeats) reps=$2; shift 2 ;;
	*) echo "unknown flag $1" >&2; exit 2 ;;
	esac
done
[[ $# -ge 1 ]] || { echo "usage: $0 [-seconds N] [-repeats N] BIN [BIN_BEFORE]" >&2; exit 2; }
bin=$1
before=${2:-}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
src='videotestsrc pattern=black is-live=true'
caps='video/x-raw,format=NV12,width=1920,height=1080,framerate=30/1'
tck=$(getconf CLK_TCK)

# measure NAME CMD...: one run; appends "NAME cpu% cs/frame" to $dir/results.
measure() {
	local name=$1; shift
	"$@" >"$dir/$name.log" 2>&1 &
	local pid=$!
	sleep 3
	kill -0 "$pid" 2>/dev/null || { echo "$name exited early:" >&2; cat "$dir/$name.log" >&2; exit 1; }
	local t0 c0 t1 c1
	t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
	c0=$(cat /proc/"$pid"/task/*/status | awk '/ctxt_switches/{s+=$2} END{print s}')
	sleep "$secs"
	t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
	c1=$(cat /proc/"$pid"/task/*/status | awk '/ctxt_switches/{s+=$2} END{print s}')
	kill "$pid"; wait "$pid" 2>/dev/null || true
	local cpu cs
	cpu=$(awk -v a="$t0" -v b="$t1" -v t="$tck" -v s="$secs" 'BEGIN{printf "%.3f", (b-a)*100/t/s}')
	cs=$(awk -v a="$c0" -v b="$c1" -v s="$secs" 'BEGIN{printf "%.2f", (b-a)/(s*30)}')
	echo "$name $cpu $cs" >>"$dir/results"
	printf '%-16s cpu %6s%% of a core  %6s context switches per frame\n' "$name" "$cpu" "$cs"
}

producer() {
	measure "$1" "$2/framehub-producer" -source "launch:$src" -encoder none -admin '' -socket "$dir/fh.sock"
}

for r in $(seq "$reps"); do
	echo "round $r (load average $(cut -d' ' -f1 /proc/loadavg))"
	producer framehub "$bin"
	[[ -n $before ]] && producer framehub@before "$before"
	measure shmsink gst-launch-1.0 $src ! "$caps" ! shmsink socket-path="$dir/shm" wait-for-connection=false shm-size=20000000
done
echo "medians over $reps runs of ${secs}s:"
for name in framehub framehub@before shmsink; do
	grep -q "^$name " "$dir/results" || continue
	cpu=$(awk -v n="$name" '$1==n{print $2}' "$dir/results" | sort -n | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}')
	cs=$(awk -v n="$name" '$1==n{print $3}' "$dir/results" | sort -n | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}')
	printf '%-16s cpu %6s%% of a core  %6s context switches per frame\n' "$name" "$cpu" "$cs"
done
