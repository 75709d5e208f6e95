// Package producer is the producer runtime of framehub: it owns the surface
// pools, the named streams and the consumer sessions, and fans every frame
// out to the consumers subscribed to its stream as a lease.
//
// A Server listens on a SOCK_SEQPACKET Unix socket. Each accepted connection
// becomes a session after a Hello/Welcome handshake; the session subscribes to
// one Stream. A frame source (the synthetic renderer, or the GStreamer
// pipeline) takes a surface from the stream's pool, fills it and calls
// Stream.Publish, which grants a lease to every subscriber below its budget,
// announces the surface's fds to a session the first time that session needs
// them, and sends a small Frame message. The surface goes back to the pool when
// the last lease on it is released, or its holder disconnects or is evicted.
//
// Sending never waits: a consumer at its budget is skipped (its drop is
// counted), and a consumer whose socket buffer is full is skipped too. One slow
// or stopped consumer therefore costs only its own frames.
//
// Locking: each Stream has one mutex guarding its lease table, its sessions and
// the sends of frame-path messages. A mutex rather than an owning goroutine
// (the usual style in this code base) keeps the publish path free of goroutine
// hand-offs, which on a 2-core edge box cost more than the whole send.
package producer
