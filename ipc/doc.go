// Package ipc is framehub's wire protocol: the messages a producer and its
// consumers exchange over a SOCK_SEQPACKET Unix socket, and their encoding.
//
// One packet carries exactly one message: a one-byte type tag followed by a
// msgpack map with short string keys. Maps (not arrays) keep the protocol
// open: a newer minor version may add keys, and a peer ignores keys it does
// not know. A peer also ignores message types it does not know (Decode
// returns *Unknown), so a newer minor version interoperates with an older one.
// docs/PROTOCOL.md is the contract; this package is its reference
// implementation.
//
// ipc is the codec the producer and the SDK use inside; it is not API.
// Nothing a third-party consumer needs lives here: package sdk has its own
// types for everything a consumer sees (sdk.Caps, sdk.Plane,
// sdk.Subscription, sdk.Policy, sdk.Code, sdk.Kind), and a consumer in
// another language follows docs/PROTOCOL.md. The import path stays public
// for the producer's libraries and framehub's own tests, without any
// promise of stability.
//
// Every message has one hand-written encoder and decoder (message_codec.go)
// over a small msgpack reader and writer (wire.go): the decoder checks each
// integer against its field's range, bounds every length by the packet and
// nesting by MaxDepth, and reports what is wrong with the field's path; the
// producer's answer (Reject 5 or 9, Bye 5) follows from the error's
// sentinel. The structs' msgpack tags name the wire keys; the tests check
// the codec against an independent msgpack library through them.
//
// File descriptors travel beside the packet as SCM_RIGHTS control data (see
// package fdpass). Only Announce and Ring carry fds; a packet of any other
// type that arrives with fds is a protocol error.
package ipc
