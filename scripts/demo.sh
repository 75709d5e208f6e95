#!/usr/bin/env bash
# The demo until the supervisor exists: a producer on the synthetic source and
# the example consumer, for DEMO_SECONDS (default: until Ctrl-C).
set -euo pipefail
BIN=${BIN:-./bin}
dir=$(mktemp -d /tmp/framehub-demo.XXXXXX)
sock="$dir/framehub.sock"
cleanup() { [ -n "${prod:-}" ] && kill "$prod" 2>/dev/null && wait "$prod" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
trap 'echo; echo "stopping"' INT TERM

"$BIN/framehub-producer" -source synthetic -socket "$sock" -width 1920 -height 1080 -fps 30 2>"$dir/producer.log" &
prod=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { echo "producer did not start:"; cat "$dir/producer.log"; exit 1; }
echo "producer: pid $prod, 1920x1080 NV12 at 30 fps on $sock (memfd surfaces)"
echo "consumer: receiving frames, verifying each frame's stamp${DEMO_SECONDS:+ for ${DEMO_SECONDS}s} (Ctrl-C stops)"
args=(-socket "$sock")
[ -n "${DEMO_SECONDS:-}" ] && args+=(-duration "${DEMO_SECONDS}s")
set +e
"$BIN/consumer-go" "${args[@]}" 2>>"$dir/consumer.log"
rc=$?
set -e
echo "producer log (last lines):"; tail -n 5 "$dir/producer.log"
exit $rc
