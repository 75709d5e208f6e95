// Package streamer is the framehub-streamer program: it subscribes to a
// framehub producer's H.264 stream and serves it over RTSP (gortsplib) to
// any number of viewers, over TCP and UDP, and optionally publishes it to an
// external RTSP server (MediaMTX, for fan-out beyond this machine).
//
// # Several cameras
//
// With Config.Cameras (-camera name=socket, once per camera; a group
// config's camera list passes them) one streamer serves every camera,
// each at rtsp://<rtsp-addr>/<name>, on one RTSP port and one UDP pair:
// each camera has its own subscription, hub, GOP cache and viewers, as a
// streamer of one camera would; they share only the RTSP server. A camera
// whose producer is away delays nobody else. Without cameras the one
// camera is Socket at Path (/cam by default). Publishing (-publish) takes
// one camera.
//
// # Data path
//
//	producer ─lease─► source ─copy AU, release─► hub ─┬─► viewer queue ─► writer ─► ServerStream (one per session) ─► viewer
//	                                                  ├─► viewer queue ─► writer ─► ...
//	                                                  └─► publisher queue ─► writer ─► gortsplib.Client ─► MediaMTX
//
// The source copies every access unit out of the shared mapping and releases
// its lease before doing anything else with it (see source.copyOut): no
// viewer, however slow, and no publish target, however far, can make the
// streamer hold a lease. It asks for a budget of 4 and a MaxHold of 2 s,
// which it never comes near. Access units are about 10–100 kB, so the copy
// costs microseconds; raw pixels are never touched.
//
// # Parameter sets and the SDP
//
// The SDP carries the SPS and PPS (sprop-parameter-sets), taken from the
// first keyframe, which the producer sends with them in-band. The RTSP
// server starts at once; a DESCRIBE that comes before the first keyframe
// waits for it (up to 5 s, then 503), and the streamer requests a keyframe
// as soon as it subscribes, so that wait is one encoder frame in practice.
// When the parameter sets change (the producer restarted with another
// resolution), new viewers get the new SDP, connected viewers keep decoding
// from the in-band parameter sets (they are kept in every keyframe), and the
// publisher announces again.
//
// # A new viewer starts on a keyframe
//
// Every RTSP session gets its own gortsplib.ServerStream and writer, so each
// viewer can start on a keyframe of its own. When a viewer starts playing,
// the streamer asks the producer for a keyframe (Client.RequestKeyframe);
// the viewer's first frame is the next keyframe, typically one or two
// frames later (~0.2 s from the client's start to its first decoded frame,
// measured with GStreamer at 720p, against a 2 s GOP). Requests are paced
// at -keyframe-interval (the producer's own rate limit, which silently drops
// requests that come too soon): a viewer that arrives just after another
// still gets its keyframe instead of waiting for the GOP.
//
// If no keyframe comes within -keyframe-wait (an encoder that ignores
// requests), the viewer starts from the GOP cache: copies of the access
// units since the last keyframe (at most -gop-cache). That start is
// immediate but the viewer then lags live by the cache's age, which is why it
// is the fallback and not the default (-keyframe-wait 0 makes it the
// default). Over UDP the cache is sent as a burst, which a small receive
// buffer may partly drop; the viewer then resynchronises at the next
// keyframe.
//
// # Slow viewers
//
// The hub never blocks: it appends each access unit to each viewer's queue
// (-viewer-queue access units) and wakes its writer. A viewer whose queue
// is full loses its backlog and every frame up to the next keyframe (P-frames
// are useless without their references); gortsplib's own per-session packet
// queue (1024 packets) overflowing does the same. Both are counted per
// viewer (framehub_streamer_viewer_dropped_total). Such a viewer resumes at
// the next natural keyframe: it does not request one, or a single slow
// viewer could make the encoder emit keyframes for everyone. A stopped TCP
// viewer is dropped by gortsplib after its 10 s write timeout.
//
// # Producer restarts and timestamps
//
// The SDK reconnects by itself (Options.Reconnect, backoff up to
// -reconnect-max); the RTSP server and its sessions are untouched, so
// connected viewers simply see a pause. After any gap (Discont: a reconnect,
// or frames the producer skipped for us) the streamer drops access units up
// to the next keyframe and requests one. RTP timestamps come from the
// streamer's own timeline (see timeline): the producer's PTS plus an offset
// chosen at the first frame and re-chosen whenever the producer's clock
// jumps (a restart), so that the timeline continues from where it was, one
// wall-clock outage later. Every viewer also keeps its RTP sequence numbers,
// so a viewer that stays connected through a producer restart sees one
// stream with a pause in it: no sequence gap, no timestamp going back.
//
// # Publishing
//
// With -publish rtsp://host:port/path the stream is also pushed (ANNOUNCE,
// SETUP, RECORD; TCP by default) to an external server. The publisher is a
// sink of the hub like a viewer (its own queue and drops), starts on a
// keyframe the same way, and when the server goes away or refuses, retries
// with exponential backoff from 1 s up to -publish-backoff-max.
//
// # Operations
//
// /metrics (Prometheus) and /healthz are served on -admin. /healthz (Health:
// every daemon's ok, status, reason and since, then the streamer's keys)
// answers 503 until the first frame ("no_frames") and whenever no frame
// came from the producer for -health-stale ("stale"); it measures the
// stream end to end, not just the process.
// Viewers may be required to authenticate (-user, -pass: RTSP basic or
// digest).
package streamer
