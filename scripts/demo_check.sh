#!/usr/bin/env bash
# Checks the demo as a user runs it: DEMO_SECONDS=20 make demo must exit 0
# and leave at least one playable recording and one snapshot; then
# make demo CAMERAS=2 the same for each of its two cameras. make test runs
# it after the Go tests, with DEMO_PRIVATE=1: admin APIs on Unix sockets and
# the streamer on ports it picks, not the demo's fixed ports (7700-7704,
# 8554, 8000/8001), which a running demo or another process may hold.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/framehub-demo-check.XXXXXX)
trap 'rm -rf "$work"' EXIT

# plays says whether gst-discoverer-1.0 finds an H.264 video stream in $1.
# The output is read whole before grep looks at it: under pipefail,
# "gst-discoverer-1.0 | grep -q" fails when grep exits at the match before
# the discoverer's next line (g_print flushes each line), and the discoverer
# dies of SIGPIPE (11 of 200 tries here, and once in CI).
plays() {
  local out
  out=$(gst-discoverer-1.0 "$1" 2>&1) || return 1
  grep -q "video.*H.264" <<<"$out"
}
cd "$work"
if ! BIN="$root/bin" DEMO_PRIVATE=1 DEMO_SECONDS=${DEMO_SECONDS:-20} DEMO_WIDTH=1280 DEMO_HEIGHT=720 "$root/scripts/demo.sh" >demo.out 2>&1; then
  echo "demo check: the demo failed:"; tail -30 demo.out; tail -30 demo/supervisor.log 2>/dev/null || true; exit 1
fi
mapfile -t recs < <(find demo/recordings -name '*.mp4' | sort)
[ ${#recs[@]} -ge 1 ] || { echo "demo check: no recording in demo/recordings"; exit 1; }
playable=0
for f in "${recs[@]}"; do
  if plays "$f"; then
    playable=$((playable + 1))
  fi
done
[ "$playable" -ge 1 ] || { echo "demo check: no recording plays (gst-discoverer-1.0)"; gst-discoverer-1.0 "${recs[0]}" || true; exit 1; }
snaps=$(find demo/snapshots -name '*.jpg' -size +1k | wc -l)
[ "$snaps" -ge 1 ] || { echo "demo check: no snapshot in demo/snapshots"; exit 1; }
grep -q '^web | .*msg="subscribed to the producer" camera=cam' demo/supervisor.log ||
  { echo "demo check: framehub-web never subscribed to the producer"; grep -i 'web' demo/supervisor.log | tail -20; exit 1; }
echo "demo check: ok ($playable playable recording(s) of ${#recs[@]}, $snaps snapshot(s), framehub-web live)"

# Two cameras in one group: a recording that plays and a snapshot of each,
# in each camera's own directories.
rm -rf demo
if ! BIN="$root/bin" CAMERAS=2 DEMO_PRIVATE=1 DEMO_SECONDS=${DEMO_SECONDS:-20} DEMO_WIDTH=640 DEMO_HEIGHT=360 "$root/scripts/demo.sh" >demo2.out 2>&1; then
  echo "demo check: the demo with CAMERAS=2 failed:"; tail -30 demo2.out; tail -30 demo/supervisor.log 2>/dev/null || true; exit 1
fi
for cam in cam1 cam2; do
  played=0
  while IFS= read -r f; do
    if plays "$f"; then played=$((played + 1)); fi
  done < <(find "demo/recordings/$cam" -name '*.mp4')
  [ "$played" -ge 1 ] || { echo "demo check: CAMERAS=2: no recording of $cam plays"; exit 1; }
  [ "$(find "demo/snapshots/$cam" -name '*.jpg' -size +1k | wc -l)" -ge 1 ] || { echo "demo check: CAMERAS=2: no snapshot of $cam"; exit 1; }
  grep -q "^web | .*msg=\"subscribed to the producer\" camera=$cam " demo/supervisor.log ||
    { echo "demo check: CAMERAS=2: framehub-web never subscribed to $cam's producer"; grep -i 'web' demo/supervisor.log | tail -20; exit 1; }
done
grep -q "cam1 *ready" demo2.out && grep -q "cam2 *ready" demo2.out || { echo "demo check: CAMERAS=2: framehubctl status shows no row per camera:"; cat demo2.out; exit 1; }
echo "demo check: CAMERAS=2 ok (each camera: a playable recording and a snapshot in its own directory, a status row, framehub-web live)"
