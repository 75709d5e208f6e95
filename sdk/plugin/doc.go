// Package plugin runs third-party framehub consumers as separate processes
// supervised by a host (github.com/hashicorp/go-plugin, net/rpc protocol).
//
// # Writing a plugin
//
// A plugin is a program whose main is one call:
//
//	func main() { plugin.Serve(&myConsumer{}) }
//
// where myConsumer implements [Consumer]: Configure receives the settings the
// host was given for this plugin, Run receives frames from an [sdk.Client]
// until its context is cancelled. A consumer that also implements
// [MetricsReporter] exposes numbers (a score, an event count) that the host
// logs and serves. Plugins log with the [Config.Logger] (or slog's default
// logger, which Serve points at the same place): JSON lines on stderr, which
// the host re-logs under the plugin's name. Stdout belongs to go-plugin's
// handshake; what a plugin prints there after Serve started is logged by the
// host as a warning.
//
// # Frames never travel over the RPC
//
// The RPC between host and plugin carries only control: [StartArgs],
// [StartReply], [HealthReply], [RunResult] and [StopArgs], none of which has a
// field for pixels or fds (gRPC and net/rpc cannot carry fds anyway). The
// frames reach the plugin the way they reach every consumer: surfaces' fds
// over the producer's SOCK_SEQPACKET socket, mapped read-only in the plugin.
//
// The host passes the producer's socket path in [StartArgs] and the plugin
// dials it itself (through the SDK). The alternative, the host dialling and
// handing the connected fd to the plugin through exec.Cmd.ExtraFiles (which
// [sdk.Options.Conn] supports), was rejected for three reasons:
//
//   - The producer identifies a peer by SO_PEERCRED, which the kernel records
//     at connect(): with a host-dialled fd every plugin would show up in the
//     producer's sessions, logs and metrics with the host's pid, and would be
//     admitted by the producer's uid/gid allow-lists on the host's
//     credentials instead of its own. A plugin that dials is attributed to,
//     and authorised as, the process that really holds its leases.
//   - The SDK can then reconnect on its own when the producer restarts
//     (sdk.Options.Reconnect does not apply to a handed-over socket), so a
//     producer restart does not cost every plugin a process restart.
//   - The host keeps no copy of a consumer socket, so there is no fd whose
//     lifetime two processes must agree on: when a plugin dies the kernel
//     closes its socket and the producer releases its leases at once.
//
// The price is that a plugin needs permission to connect to the socket path,
// the same permission any standalone consumer needs.
//
// # What a misbehaving plugin costs
//
// Only itself. A plugin that panics or exits is restarted by the host with
// exponential backoff; its socket closes with the process and the producer
// releases its leases. A plugin that stops releasing frames is skipped by
// the producer at its budget and evicted at its deadline (MaxHold); the SDK
// then reconnects it or its Run returns and the host restarts it. A plugin
// that hangs (its RPC does not answer a health check within the host's
// HealthTimeout) is killed with SIGKILL and restarted. A plugin that floods
// its socket is throttled by its own full socket buffer (the producer reads
// a bounded amount per consumer per frame). None of this changes what other
// consumers receive: the producer never waits for a consumer. A plugin
// cannot write to shared surfaces: it gets sealed, read-only memfds (see
// docs/SDK.md, "Plugins").
package plugin
