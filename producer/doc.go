// Package producer is the producer runtime of framehub: it owns the named
// streams and the consumer sessions, and fans every frame out to the
// consumers subscribed to its stream as a lease.
//
// A Server listens on a SOCK_SEQPACKET Unix socket. Each accepted connection
// becomes a session after a Hello/Welcome handshake; the session subscribes to
// one Stream. A frame source (the synthetic renderer, or the GStreamer
// pipeline) takes a surface from the stream's pool, fills it and calls
// Stream.Publish. The surface goes back to the pool when the last lease on
// it is released, or its holder disconnects or is evicted.
//
// # A pure core and its shell
//
// Every decision — who gets which frame under which lease, who is skipped,
// evicted, reclaimed or refused, which surfaces a consumer must be announced
// or told to forget — is made by a fanout.Core, one per stream: pure logic
// with no I/O, no goroutines and no clock reads, tested against a plain
// model (package fanout). A Stream is its shell: it calls the core under its
// mutex, appends the core's actions to each session's outbox while it still
// holds it (so every consumer's messages keep the core's order), and after
// unlocking frees frames, logs, and lets each touched session send. A
// session only encodes, sends and reads; its fields are its own (immutable
// after the handshake, or guarded by its own mutexes). This replaced a
// design where session state was guarded by the stream's mutex in another
// file and sessions whose sends failed were finished from a deferred list.
//
// Sending never waits: a consumer at its budget is skipped (its drop is
// counted), and a frame its full socket refuses goes back to the core as
// skipped; announces, caps and EOS wait in the outbox, in order, until the
// consumer reads again. One slow or stopped consumer therefore costs only
// its own frames. The fairness rules (admission control, reclaim, reconnect
// penalty, read budget) are the core's; the server adds connection
// admission: connections without a Hello have their own allowance per peer
// process and uid, and a 1 s deadline (Config.MaxHandshakes...).
//
// # Reading consumers on the frame clock
//
// A departure from DESIGN.md's "one session per consumer connection" with
// its own reader: after the handshake a consumer's socket is taken out of
// Go's netpoller, and the stream reads what every consumer sent (releases,
// keyframe requests, goodbyes, EOF) without waiting, right before it
// publishes each frame (also a frame dropped at the source), and every 50 ms
// when no frame flows (within a second of the last one). A release frees
// budget and surfaces that only the next frame can use, so nothing is lost
// by reading it then; what is gained is one producer wake-up less per frame
// per consumer, which on a 2-vCPU VM cut the producer's CPU per consumer
// from 150-400 µs to 35-45 µs per frame (docs/BENCHMARKS.md). A killed
// consumer is still noticed within one frame period. The work per consumer
// and frame is bounded, so a consumer flooding its socket costs only itself.
// Consumers with policy latest, and replaying consumers, keep a reader
// goroutine: a release must deliver their pending or next buffered frame at
// once.
//
// A mutex rather than an owning goroutine (the usual style in this code
// base) serialises the core: it keeps the publish path free of goroutine
// hand-offs, which on a 2-core edge box cost more than the whole send.
package producer
