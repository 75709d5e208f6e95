// Package fanout is the fan-out core of a producer stream: which subscriber
// gets which frame, under which lease, and which subscriber must go. It is
// pure logic in the manner of package lease, which it builds on: no I/O, no
// goroutines, no locks, no clock reads (every method that needs the time is
// given it).
//
// A Core owns, for one stream: the lease table; per subscriber its budget,
// policy (queue or latest), pending latest frame, replay cursor, announced
// surfaces, skip and discontinuity bookkeeping and counters; the replay
// buffer; and the fairness state (promised budgets, eviction penalties,
// control-message allowances). Its methods take events — Attach, Publish,
// Released, Control, Tick, Reclaim, Detach, ... — and append Actions: announce
// surfaces, deliver a frame, forget surfaces, send a message, close a
// subscriber with a code and a reason, free a frame's memory, report skips.
// The caller (the producer's Stream) carries the actions out after it has
// stopped serialising calls into the core: sends go to each session's own
// outbox, frees to the frame's owner. Actions of one subscriber are appended
// in the order they must reach it.
//
// # Fairness
//
// A consumer costs only itself. The core enforces it with five rules
// (docs/PROTOCOL.md, "Fairness", is the consumer-facing statement):
//
//   - Admission control. The core never promises more surfaces than the
//     stream's capacity can back. A subscriber is promised its budget, plus
//     one surface for the pending frame of a latest-policy subscriber; the
//     promises of all subscribers plus the source's reserve stay within the
//     capacity. Attach grants at most half of what the capacity can share
//     (so no default lets one consumer take the pool), at most what is left,
//     and refuses with ErrNoCapacity when nothing is left.
//   - Reclaim, not starvation. When the source still finds no free surface
//     (slabs, a foreign pool smaller than announced, a burst), Reclaim
//     evicts the subscriber that pins the most surfaces beyond its fair share
//     (the shareable capacity divided by the number of subscribers), with
//     ipc.CodeReclaimed, instead of dropping the frame for everyone.
//   - Reconnect penalty. A subscriber evicted for holding (max_hold) or
//     reclaimed is remembered by uid and name for Config.PenaltyWindow; each
//     such eviction in the window halves the budget of its next attach
//     (never below 1). Hold, evict, reconnect cannot lower anyone else's rate.
//   - Read budget. Messages that release nothing (Ping, Pong, RequestKeyframe,
//     empty Releases, unknown types) draw on a per-subscriber token bucket
//     (Config.ControlRate per second, Config.ControlBurst at once); the
//     subscriber that overdraws it is closed with ipc.CodeRateLimit, so a
//     flood costs the flooder its session.
//   - Connection admission is the server's (it happens before a subscriber
//     exists): see producer.Config.MaxHandshakes.
//
// # Invariants
//
// After every call, and checked by the model test (model_test.go) after
// every step of fuzz-generated sequences:
//
//  1. A frame's memory is freed (a Free action) exactly once, after its last
//     lease and hold ended; never while a subscriber could still be given it.
//  2. A subscriber holds at most its budget of leases; the promises of all
//     subscribers plus the reserve never exceed the capacity.
//  3. A subscriber receives frames in increasing sequence order, each at most
//     once; a frame's Dropped counts the frames it did not get since the one
//     before, and FlagDiscont is set whenever that is not zero (or the
//     stream broke since).
//  4. A surface is announced to a subscriber before the first frame that
//     uses it, and again after a Forget or with a new generation.
//  5. A subscriber the core closes gets exactly one Close action and nothing
//     after it.
package fanout
