// framehub-web's page: every camera live, WebRTC (WHEP) first, LL-HLS
// (hls.js, or the browser's own HLS) when WebRTC fails. ?mode=webrtc or
// ?mode=hls forces one. The state of every player is in window.framehub
// (and in data- attributes of its section), which the browser tests read.
"use strict";

const params = new URLSearchParams(location.search);
const forced = params.get("mode"); // "webrtc", "hls" or null
const framehub = (window.framehub = { players: {}, errors: [] });

function log(cam, msg) {
  console.log(`[${cam}] ${msg}`);
  framehub.errors.push(`${cam}: ${msg}`);
}

// playWebRTC starts a WHEP session for cam in video; it resolves once the
// connection is up and rejects when it fails.
async function playWebRTC(cam, video, p) {
  const pc = new RTCPeerConnection();
  p.pc = pc;
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (e) => { video.srcObject = e.streams[0] || new MediaStream([e.track]); };
  const connected = new Promise((resolve, reject) => {
    pc.onconnectionstatechange = () => {
      p.state = pc.connectionState;
      if (pc.connectionState === "connected") resolve();
      if (pc.connectionState === "failed") reject(new Error("WebRTC connection failed"));
    };
    setTimeout(() => reject(new Error("WebRTC not connected within 10 s")), 10000);
  });
  await pc.setLocalDescription(await pc.createOffer());
  // No trickle ICE: the offer goes once gathering is complete (host
  // candidates: milliseconds), or after 2 s with what there is.
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
    setTimeout(resolve, 2000);
  });
  const resp = await fetch(`/${cam}/whep`, { method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp });
  if (resp.status !== 201) throw new Error(`WHEP ${resp.status}: ${await resp.text()}`);
  p.session = resp.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await resp.text() });
  await connected;
}

// playHLS plays cam's LL-HLS stream in video.
function playHLS(cam, video, p) {
  const url = `/${cam}/index.m3u8`;
  if (window.Hls && Hls.isSupported()) {
    const hls = new Hls({ lowLatencyMode: true, liveSyncDurationCount: 1, backBufferLength: 10 });
    p.hls = hls;
    hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) { p.state = "failed"; log(cam, `hls.js: ${d.type} ${d.details}`); } });
    hls.on(Hls.Events.MANIFEST_PARSED, () => { p.state = "playing"; video.play().catch(() => {}); });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
    p.state = "playing";
  } else {
    throw new Error("this browser plays neither WebRTC nor HLS");
  }
}

async function startPlayer(cam, section) {
  const video = section.querySelector("video");
  const p = (framehub.players[cam] = { mode: null, state: "new", firstFrameMs: null, started: performance.now() });
  const show = () => {
    section.dataset.mode = p.mode || "";
    section.dataset.state = p.state;
    let text = p.mode ? `${p.mode} · ${p.state}` : p.state;
    if (p.latencies.length) {
      const sorted = [...p.latencies].sort((a, b) => a - b);
      text += ` · ${Math.round(sorted[sorted.length >> 1])} ms behind`;
    }
    section.querySelector(".mode").textContent = text;
  };
  p.latencies = []; // glass-to-glass, ms: display time − capture time of the frame shown
  const onFrame = (now, meta) => {
    if (p.firstFrameMs === null) p.firstFrameMs = performance.now() - p.started;
    const shown = performance.timeOrigin + (meta ? meta.expectedDisplayTime : now);
    let captured = null;
    if (p.mode === "webrtc" && meta && meta.rtpTimestamp !== undefined) {
      // framehub-web stamps RTP timestamps with the capture time
      // (CLOCK_REALTIME at 90 kHz, modulo 2^32): unwrap it against now.
      const nowTicks = Math.floor(shown * 90) % 2 ** 32;
      captured = shown - ((nowTicks - meta.rtpTimestamp + 2 ** 32) % 2 ** 32) / 90;
    } else if (p.mode === "hls" && p.hls && p.hls.playingDate) {
      captured = p.hls.playingDate.getTime(); // EXT-X-PROGRAM-DATE-TIME: the capture time
    }
    if (captured !== null) {
      p.latencies.push(shown - captured);
      if (p.latencies.length > 600) p.latencies.shift();
    }
    video.requestVideoFrameCallback(onFrame);
  };
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
  else video.addEventListener("playing", () => { p.firstFrameMs = performance.now() - p.started; }, { once: true });
  setInterval(show, 250);
  if (forced !== "hls") {
    p.mode = "webrtc";
    try {
      await playWebRTC(cam, video, p);
      show();
      return;
    } catch (e) {
      log(cam, `WebRTC: ${e.message}`);
      if (p.pc) p.pc.close();
      if (forced === "webrtc") { p.state = "failed"; show(); return; }
    }
  }
  p.mode = "hls";
  p.state = "loading";
  p.started = performance.now();
  p.firstFrameMs = null;
  p.latencies = [];
  try { playHLS(cam, video, p); } catch (e) { p.state = "failed"; log(cam, e.message); }
  show();
}

function fmtStatus(c) {
  const viewers = Object.entries(c.viewers || {}).map(([k, v]) => `${v} ${k}`).join(", ") || "none";
  let rec = "no recordings directory";
  if (c.recording) {
    rec = c.recording.active ? "recording" : "not recording";
    if (c.recording.last) rec += ` (last video ${new Date(c.recording.last).toLocaleTimeString()})`;
  }
  const size = c.width ? `${c.width}×${c.height}` : "";
  let text = `${c.connected ? "live" : "producer unreachable"} ${size} · ${c.fps.toFixed(1)} fps · viewers: ${viewers} · ${rec}`;
  if (c.consumers) {
    text += " · consumers: " + c.consumers.map((x) => `${x.name} (${x.stream}${x.dropped ? `, ${x.dropped} dropped` : ""})`).join(", ");
  } else if (c.consumers_error) {
    text += ` · consumers unknown: ${c.consumers_error}`;
  }
  return text;
}

async function loadRecordings(name, ul) {
  const end = new Date(), start = new Date(end - 3600e3);
  const q = new URLSearchParams({ camera: name, start: start.toISOString(), end: end.toISOString() });
  const resp = await fetch(`/list?${q}`);
  ul.textContent = "";
  if (!resp.ok) { ul.textContent = (await resp.json()).error; return; }
  for (const r of (await resp.json()).recordings.reverse()) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = r.url;
    a.target = "_blank";
    a.textContent = `${new Date(r.start).toLocaleTimeString()} – ${new Date(r.end).toLocaleTimeString()}${r.open ? " (recording)" : ""}`;
    li.append(a, ` ${(r.bytes / 1e6).toFixed(1)} MB`);
    ul.append(li);
  }
}

async function main() {
  const main = document.getElementById("cameras");
  const resp = await fetch("/api/cameras");
  const { cameras } = await resp.json();
  main.textContent = "";
  const tpl = document.getElementById("camera");
  for (const c of cameras) {
    const section = tpl.content.firstElementChild.cloneNode(true);
    section.dataset.camera = c.name;
    section.querySelector(".name").textContent = c.name;
    section.querySelector(".snaplink").href = `/${c.name}/snapshot.jpg`;
    section.querySelector(".stored").href = `/${c.name}/snapshots/`;
    section.querySelector(".list").href = `/list?camera=${encodeURIComponent(c.name)}`;
    const last = section.querySelector(".last");
    const lastMinute = () => {
      const q = new URLSearchParams({ camera: c.name, start: new Date(Date.now() - 60e3).toISOString(), duration: "60s" });
      last.href = `/get?${q}`;
    };
    lastMinute();
    last.onmouseenter = last.onfocus = lastMinute; // the minute before the click
    section.querySelector(".snap").onclick = () => {
      section.querySelector("img.snapshot").src = `/${c.name}/snapshot.jpg?width=320&t=${Date.now()}`;
    };
    const details = section.querySelector("details");
    details.ontoggle = () => details.open && loadRecordings(c.name, details.querySelector("ul"));
    main.append(section);
    startPlayer(c.name, section);
  }
  const refresh = async () => {
    const r = await fetch("/api/cameras");
    for (const c of (await r.json()).cameras) {
      const s = main.querySelector(`section[data-camera="${c.name}"] .status`);
      if (s) s.textContent = fmtStatus(c);
    }
  };
  refresh();
  setInterval(refresh, 2000);
  setInterval(() => { document.getElementById("clock").textContent = new Date().toISOString(); }, 100);
}

main().catch((e) => log("page", e.message));
