#!/usr/bin/env bash
# make demo: the whole group under the supervisor on the embedded default —
# GStreamer test camera, x264enc, memfd surfaces — with the recorder writing
# to ./demo/recordings, the RTSP streamer at rtsp://127.0.0.1:8554/cam and the
# snapshot service writing to ./demo/snapshots, and framehub-web at
# http://127.0.0.1:8889/ (the camera live in a browser, snapshots and
# recordings). Shows a live status line,
# takes a snapshot, and stops cleanly on Ctrl-C or after DEMO_SECONDS.
set -euo pipefail
BIN=$(cd "${BIN:-./bin}" && pwd)
DEMO=$(mkdir -p demo && cd demo && pwd)
mkdir -p "$DEMO/recordings" "$DEMO/snapshots"
# $DEMO/run holds the producer's socket and the admin token that every
# daemon of the group checks and framehubctl sends (docs/SECURITY.md). The
# daemons create it (mode 0700) and refuse it if another user could change
# it, so it is not made here. The token file is set for this demo, so that
# it runs as root and as any user, with or without XDG_RUNTIME_DIR.
sock="$DEMO/run/framehub.sock"
export FRAMEHUB_ADMIN_TOKEN_FILE="$DEMO/run/admin.token"
cfg="$DEMO/framehub.yaml"
width=${DEMO_WIDTH:-1920}
height=${DEMO_HEIGHT:-1080}

# The demo's fixed addresses, which the README and framehubctl's defaults
# name. DEMO_PRIVATE=1 (the demo check of make test) puts the admin APIs on
# Unix sockets in $DEMO/run and lets the streamer pick its ports, so that a
# demo already running, or any process on those ports, cannot collide with
# it.
if [ -n "${DEMO_PRIVATE:-}" ]; then
  sup_admin=unix:$DEMO/run/supervisor.admin prod_admin=unix:$DEMO/run/producer.admin
  rec_admin=unix:$DEMO/run/recorder.admin snap_admin=unix:$DEMO/run/snapshot.admin
  str_args='-rtsp-addr, "127.0.0.1:0", -udp-rtp-addr, "127.0.0.1:0", -admin, "127.0.0.1:0"' # its admin API takes host:port only
  str_admin=""
  web_addr=127.0.0.1:0 web_admin=""
else
  sup_admin=127.0.0.1:7700 prod_admin=127.0.0.1:7701 rec_admin=127.0.0.1:7702 snap_admin=127.0.0.1:7704
  str_args='-rtsp-addr, "127.0.0.1:8554", -admin, 127.0.0.1:7703'
  str_admin="admin: 127.0.0.1:7703"
  web_addr=127.0.0.1:8889 web_admin="admin: 127.0.0.1:8889"
fi

cat >"$cfg" <<YAML
# Written by make demo. framehub-supervisor -config $cfg runs it again.
admin: $sup_admin
grace: 5s
processes:
  - name: producer
    binary: $BIN/framehub-producer
    args: [-source, test, -encoder, x264enc, -width, "$width", -height, "$height", -fps, "30",
           -socket, $sock, -admin, $prod_admin]
    ready-socket: $sock
    admin: $prod_admin
  - name: recorder
    binary: $BIN/framehub-recorder
    args: [-socket, $sock, -dir, $DEMO/recordings, -segment, 10s, -admin, $rec_admin]
    admin: $rec_admin
  - name: streamer
    binary: $BIN/framehub-streamer
    args: [-socket, $sock, $str_args, -path, cam]
    $str_admin
  - name: snapshot
    binary: $BIN/framehub-snapshot
    args: [-socket, $sock, -dir, $DEMO/snapshots, -admin, $snap_admin]
    admin: $snap_admin
  - name: web
    binary: $BIN/framehub-web
    args: [-addr, "$web_addr", -camera, "name=cam,socket=$sock,recordings=$DEMO/recordings,snapshots=$DEMO/snapshots,admin=$prod_admin"]
    $web_admin
YAML

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

echo "framehub demo: config $cfg, logs $DEMO/supervisor.log"
for _ in $(seq 200); do
  if "$BIN/framehubctl" status -addr "$sup_admin" --json 2>/dev/null | grep -q '"state": "ready"'; then
    ready=$("$BIN/framehubctl" status -addr "$sup_admin" --json 2>/dev/null | grep -c '"state": "ready"' || true)
    [ "$ready" -ge 5 ] && break
  fi
  kill -0 "$sup" 2>/dev/null || { echo "the supervisor exited:"; tail -20 "$DEMO/supervisor.log"; exit 1; }
  sleep 0.25
done
"$BIN/framehubctl" status -addr "$sup_admin"
echo
sleep 2 # the recorder's first segment and the snapshot need frames
if "$BIN/framehubctl" snapshot -addr "$snap_admin" -o "$DEMO/snapshots/demo.jpg" >/dev/null; then
  echo "snapshot: $DEMO/snapshots/demo.jpg"
else
  echo "snapshot failed (see framehubctl logs snapshot)"
fi
url=$(sed -n 's/.*msg="streamer serving" url=\(rtsp:[^ ]*\).*/\1/p' "$DEMO/supervisor.log" | tail -1)
url=${url:-rtsp://127.0.0.1:8554/cam}
web=$(sed -n 's/.*msg="web server listening" url=\(http:[^ ]*\).*/\1/p' "$DEMO/supervisor.log" | tail -1)
web=${web:-http://127.0.0.1:8889/}
cat <<TXT
in a browser:       $web (live over WebRTC or LL-HLS, snapshots, recordings)
watch the stream:   gst-launch-1.0 rtspsrc location=$url ! decodebin ! autovideosink
                    (or: vlc $url, ffplay $url)
recordings:         $DEMO/recordings
more:               $BIN/framehubctl status | consumers | logs <name> | snapshot -o f.jpg | record event
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
