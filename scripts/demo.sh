#!/usr/bin/env bash
# make demo: the whole group under the supervisor on the embedded default —
# GStreamer test camera, x264enc, memfd surfaces — with the recorder writing
# to ./demo/recordings/cam, the RTSP streamer at rtsp://127.0.0.1:8554/cam and
# the snapshot service writing to ./demo/snapshots/cam, and framehub-web at
# http://127.0.0.1:8889/ (the camera live in a browser, snapshots and
# recordings); CAMERAS=2: two cameras, cam1 and cam2, each with its
# recorder and snapshot service, one streamer and one framehub-web for
# both. Shows a live status line, takes a snapshot of each camera, and
# stops cleanly on Ctrl-C or after DEMO_SECONDS.
set -euo pipefail
BIN=$(cd "${BIN:-./bin}" && pwd)
DEMO=$(mkdir -p demo && cd demo && pwd)
mkdir -p "$DEMO/recordings" "$DEMO/snapshots"
# $DEMO/run holds a directory per camera (its producer's socket and config,
# its daemons' admin sockets) and the admin token that every daemon of the
# group checks and framehubctl sends (docs/SECURITY.md). The daemons and
# the supervisor create them (mode 0700) and refuse them if another user
# could change them, so they are not made here. The token file is set for
# this demo, so that it runs as root and as any user, with or without
# XDG_RUNTIME_DIR.
export FRAMEHUB_ADMIN_TOKEN_FILE="$DEMO/run/admin.token"
cfg="$DEMO/framehub.yaml"
# CAMERAS=n (make demo CAMERAS=2) runs n test cameras in one group: a
# producer, a recorder and a snapshot service per camera, one streamer for
# all. One camera is named cam (rtsp://127.0.0.1:8554/cam), several cam1,
# cam2…
cameras=${CAMERAS:-1}
case "$cameras" in ''|*[!0-9]*|0) echo "CAMERAS=$cameras: want a number ≥ 1"; exit 2;; esac
if [ "$cameras" = 1 ]; then
  names=(cam)
  width=${DEMO_WIDTH:-1920} height=${DEMO_HEIGHT:-1080}
else
  names=()
  for i in $(seq "$cameras"); do names+=("cam$i"); done
  # Several x264 encoders on a small machine: 720p unless told otherwise.
  width=${DEMO_WIDTH:-1280} height=${DEMO_HEIGHT:-720}
fi

# The demo's fixed addresses, which the README and framehubctl's defaults
# name. DEMO_PRIVATE=1 (the demo check of make test) puts the supervisor's
# admin API on a Unix socket in $DEMO/run and lets the streamer pick its
# ports, so that a demo already running, or any process on those ports,
# cannot collide with it. Each camera's daemons answer on Unix sockets in
# the camera's run directory ($DEMO/run/<camera>/): framehubctl finds them
# through the supervisor (framehubctl snapshot -camera cam).
if [ -n "${DEMO_PRIVATE:-}" ]; then
  sup_admin=unix:$DEMO/run/supervisor.admin
  str_args='-rtsp-addr, "127.0.0.1:0", -udp-rtp-addr, "127.0.0.1:0", -admin, "127.0.0.1:0"' # its admin API takes host:port only
  str_admin=""
  web_addr=127.0.0.1:0 web_admin=""
else
  sup_admin=127.0.0.1:7700
  str_args='-rtsp-addr, "127.0.0.1:8554", -admin, 127.0.0.1:7703'
  str_admin="admin: 127.0.0.1:7703"
  web_addr=127.0.0.1:8889 web_admin="admin: 127.0.0.1:8889"
fi

{
  echo "# Written by make demo. framehub-supervisor -config $cfg runs it again."
  echo "admin: $sup_admin"
  echo "grace: 5s"
  echo "run-dir: $DEMO/run"
  echo "cameras:"
  for name in "${names[@]}"; do
    cat <<YAML
  - name: $name
    source: test
    options: {encoder: x264enc, width: $width, height: $height, fps: 30}
YAML
  done
  cat <<YAML
processes:
  - name: recorder
    binary: $BIN/framehub-recorder
    per-camera: true
    args: [-socket, "{socket}", -dir, "$DEMO/recordings/{camera}", -segment, 10s, -admin, "unix:{dir}/recorder.admin"]
    admin: "unix:{dir}/recorder.admin"
  - name: streamer
    binary: $BIN/framehub-streamer
    args: [$str_args]
    camera-args: [-camera, "{camera}={socket}"]
    $str_admin
  - name: snapshot
    binary: $BIN/framehub-snapshot
    per-camera: true
    args: [-socket, "{socket}", -dir, "$DEMO/snapshots/{camera}", -admin, "unix:{dir}/snapshot.admin"]
    admin: "unix:{dir}/snapshot.admin"
  - name: web
    binary: $BIN/framehub-web
    args: [-addr, "$web_addr"]
    camera-args: [-camera, "name={camera},socket={socket},recordings=$DEMO/recordings/{camera},snapshots=$DEMO/snapshots/{camera},admin={producer-admin}"]
    $web_admin
YAML
} >"$cfg"

"$BIN/framehub-supervisor" -config "$cfg" 2>"$DEMO/supervisor.log" &
sup=$!
stopping=0
stop() {
  [ "$stopping" = 1 ] && return
  stopping=1
  echo
  echo "stopping the group…"
  kill -TERM "$sup" 2>/dev/null || true
  wait "$sup" 2>/dev/null || true
}
trap stop INT TERM
trap 'stop; exit' EXIT

echo "framehub demo: ${#names[@]} camera(s) (${names[*]}), config $cfg, logs $DEMO/supervisor.log"
want=$((3 * ${#names[@]} + 2)) # a producer, a recorder and a snapshot service per camera, one streamer, one framehub-web
for _ in $(seq 200); do
  ready=$("$BIN/framehubctl" status -addr "$sup_admin" --json 2>/dev/null | grep -c '"state": "ready"' || true)
  [ "$ready" -ge "$want" ] && break
  kill -0 "$sup" 2>/dev/null || { echo "the supervisor exited:"; tail -20 "$DEMO/supervisor.log"; exit 1; }
  sleep 0.25
done
"$BIN/framehubctl" status -addr "$sup_admin"
echo
sleep 2 # the recorder's first segment and the snapshot need frames
for name in "${names[@]}"; do
  if "$BIN/framehubctl" snapshot -camera "$name" -supervisor "$sup_admin" -o "$DEMO/snapshots/$name/demo.jpg" >/dev/null; then
    echo "snapshot of $name: $DEMO/snapshots/$name/demo.jpg"
  else
    echo "snapshot of $name failed (see framehubctl logs snapshot.$name)"
  fi
done
echo "watch the streams:"
for name in "${names[@]}"; do
  url=$(sed -n "s|.*msg=\"streamer serving\" url=\(rtsp:[^ ]*/$name\) .*|\1|p" "$DEMO/supervisor.log" | tail -1)
  url=${url:-rtsp://127.0.0.1:8554/$name}
  echo "  $name: gst-launch-1.0 rtspsrc location=$url ! decodebin ! autovideosink   (or: vlc $url, ffplay $url)"
done
web=$(sed -n 's/.*msg="web server listening" url=\(http:[^ ]*\).*/\1/p' "$DEMO/supervisor.log" | tail -1)
web=${web:-http://127.0.0.1:8889/}
cat <<TXT
in a browser:       $web (live over WebRTC or LL-HLS, snapshots, recordings; each camera at /<camera>/)
recordings:         $DEMO/recordings/<camera>
more:               $BIN/framehubctl status [-cameras] | consumers | logs <name> | snapshot -camera <camera> -o f.jpg | record event -camera <camera>
TXT
echo
end=$(( $(date +%s) + ${DEMO_SECONDS:-0} ))
while kill -0 "$sup" 2>/dev/null; do
  line=$("$BIN/framehubctl" status -addr "$sup_admin" --line --interval 1s 2>/dev/null || echo "status unavailable")
  printf '\r\033[K%s' "$line"
  if [ -n "${DEMO_SECONDS:-}" ] && [ "$(date +%s)" -ge "$end" ]; then
    break
  fi
done
stop
trap - EXIT
echo "recordings: $(find "$DEMO/recordings" -name '*.mp4' | wc -l) file(s) in $DEMO/recordings"
echo "snapshots:  $(find "$DEMO/snapshots" -name '*.jpg' | wc -l) file(s) in $DEMO/snapshots"
