#!/bin/bash
# bench/gpu/run.sh: the GPU machine's side of docs/bench/gpu.md. It needs, in
# one directory (its first argument; the script's own by default):
#   gpu          this command, cross-built: CGO_ENABLED=0 go build -ldflags='-s -w' -o gpu ./bench/gpu
#   kernels.h kernels.cu   from internal/gpuframe
#   probe.c      from bench/gpu/probe
# and writes into $OUT (default ./out): facts.txt, kernels.ptx (rebuilt, and
# whether it equals the embedded one), probe.txt, and for each scheduling
# mode in $SCHEDS (default "blocking auto") gpu-MODE.json and gpu-MODE.md.
# WINDOW (default 30s) and KILLS (default 5) shape the run.
set -u
dir=${1:-$(dirname "$0")}
out=${OUT:-./out}
mkdir -p "$out"
cd "$dir" || exit 1
{
  date -u +%FT%TZ; uname -r; nproc; grep -m1 'model name' /proc/cpuinfo
  nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,pci.bus_id,clocks.sm,clocks.mem --format=csv
  nvcc --version | tail -2
  ./gpu facts
} > "$out/facts.txt" 2>&1
cat "$out/facts.txt"
cuda=$(dirname "$(dirname "$(command -v nvcc)")")
nvcc -ptx -arch=compute_75 -o "$out/kernels.ptx" kernels.cu || exit 1
if [ -f kernels.ptx ] && cmp -s kernels.ptx "$out/kernels.ptx"; then echo "kernels.ptx: nvcc output equals the embedded PTX"; else echo "kernels.ptx: nvcc output DIFFERS from the embedded PTX"; fi
gcc -O2 -Wall -I"$cuda/include" -I. probe.c -o /tmp/framehub-probe -L"$cuda/lib64/stubs" -lcuda || exit 1
/tmp/framehub-probe "$out/kernels.ptx" > "$out/probe.txt" 2>&1
echo "probe rc=$?"; grep -E '^(check|render|verify|dmabuf_mmap|exported)' "$out/probe.txt"
rc=0
for s in ${SCHEDS:-blocking auto}; do
  ./gpu run -sched "$s" -window "${WINDOW:-30s}" -kills "${KILLS:-5}" -out "$out/gpu-$s.json" > "$out/gpu-$s.md" || rc=1
  cat "$out/gpu-$s.md"
done
exit $rc
