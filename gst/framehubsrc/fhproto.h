/* framehub wire protocol, consumer side, in C (docs/PROTOCOL.md is the
 * contract): a msgpack reader and writer for the few types the protocol
 * uses, the messages a consumer sends (Hello, Release, RequestKeyframe,
 * Pong, Bye) and those it receives (everything the producer sends).
 *
 * Plain C99, no GStreamer and no allocation: the caller passes the buffers.
 * The decoder follows §3: a body is one msgpack map with string keys
 * (msgpack nil: every field zero), unknown keys are skipped whatever their
 * type, missing keys are zero, any integer width is accepted for any integer
 * field but the value must fit the field, floats are never valid, strings
 * may be str or bin, containers nest at most 16 deep, nothing may follow the
 * map, and lengths are checked against the packet before anything is read.
 * An unknown type tag decodes as FH_MSG_UNKNOWN, without its body. */
#ifndef FRAMEHUB_FHPROTO_H
#define FRAMEHUB_FHPROTO_H

#include <stddef.h>
#include <stdint.h>

#define FH_VERSION_MAJOR 1
/* The minor version framehubsrc sends. 0 on purpose: a 1.1 producer then
 * refuses a subscription to a stream of cuda surfaces (kind 3) with Reject
 * 1 and a reason saying so (§6.1), instead of announcing memory the CPU
 * cannot map. */
#define FH_VERSION_MINOR 0

#define FH_MAX_PACKET 65536     /* largest packet, type tag included */
#define FH_MAX_FDS 253          /* most fds in one packet (SCM_MAX_FD) */
#define FH_MAX_DEPTH 16         /* deepest container nesting */
#define FH_MAX_PLANES 4
#define FH_MAX_SURFACE_FDS 4
#define FH_MAX_NAME 64          /* Hello.name, bytes */

/* Type tags (§4). */
enum {
  FH_MSG_UNKNOWN = 0,
  FH_MSG_HELLO = 1,
  FH_MSG_WELCOME = 2,
  FH_MSG_REJECT = 3,
  FH_MSG_ANNOUNCE = 4,
  FH_MSG_FRAME = 5,
  FH_MSG_FORGET = 6,
  FH_MSG_CAPS = 7,
  FH_MSG_EOS = 8,
  FH_MSG_RELEASE = 9,
  FH_MSG_REQUEST_KEYFRAME = 10,
  FH_MSG_PING = 11,
  FH_MSG_PONG = 12,
  FH_MSG_BYE = 13,
  FH_MSG_RING = 14
};

/* Frame flags (§4.5). */
#define FH_FLAG_KEYFRAME 1u
#define FH_FLAG_DISCONT 2u
#define FH_FLAG_REPLAY 4u
#define FH_FLAG_HEADER 8u

/* Hello flags (§4.1). */
#define FH_HELLO_LOSSLESS 1u
#define FH_HELLO_RELEASE_RING 2u

/* Surface kinds (§6). */
#define FH_KIND_MEMFD 1
#define FH_KIND_DMABUF 2
#define FH_KIND_CUDA 3

/* Codes of Reject and Bye (§4.14). */
enum {
  FH_CODE_OK = 0, FH_CODE_VERSION = 1, FH_CODE_UNKNOWN_STREAM = 2,
  FH_CODE_DENIED = 3, FH_CODE_TOO_MANY = 4, FH_CODE_PROTOCOL = 5,
  FH_CODE_MAX_HOLD = 6, FH_CODE_SHUTDOWN = 7, FH_CODE_BAD_RELEASE = 8,
  FH_CODE_INVALID_ARGUMENT = 9, FH_CODE_LOSSLESS = 10,
  FH_CODE_NO_CAPACITY = 11, FH_CODE_RECLAIMED = 12, FH_CODE_RATE_LIMIT = 13
};

typedef struct {
  uint32_t offset, stride, size;
  uint8_t fd;
} FhPlane;

typedef struct {
  char format[32];
  uint32_t width, height, fps_n, fps_d;
  int n_planes;
  FhPlane planes[FH_MAX_PLANES];
  char codec[64];
} FhCaps;

typedef struct {
  uint16_t major, minor;
  uint64_t session;
  char stream[256];
  uint32_t max_in_flight, max_hold_ms;
  char policy[16];
  uint32_t flags;
  FhCaps caps;
  uint32_t pool_min, pool_max;
  uint64_t pool_surface_size;
  uint8_t pool_kind;
} FhWelcome;

/* Reject, Bye and EOS: a code (0 for EOS) and a reason, truncated to fit. */
typedef struct {
  uint16_t code;
  char reason[1024];
} FhReason;

typedef struct {
  uint32_t id, gen;
  uint64_t size;
  uint8_t kind, nfds;
  int has_device;               /* a `device` key (GPU memory, §6.1) */
  int no_cpu_map;               /* device.no_cpu_map */
} FhSurfaceDesc;

typedef struct {
  int n_surfaces;
  FhSurfaceDesc surfaces[FH_MAX_FDS];
  int n_fds;                    /* sum of nfds */
} FhAnnounce;

typedef struct {
  uint64_t lease;
  uint32_t surface, gen;
  uint64_t seq;
  uint32_t offset, size;
  int64_t pts, dts, dur, mono_ns, real_ns;
  uint32_t flags, dropped;
  int n_planes;
  FhPlane planes[FH_MAX_PLANES];
} FhFrame;

#define FH_MAX_FORGET (FH_MAX_PACKET)

typedef struct {
  int n_ids;
  uint32_t ids[FH_MAX_FORGET];  /* one byte per id at least: a packet holds fewer */
} FhForget;

typedef struct {
  uint64_t token;
  int64_t mono_ns;
} FhPing;

typedef struct {
  int type;                     /* FH_MSG_*; FH_MSG_UNKNOWN for a tag this code does not know */
  int tag;                      /* the packet's type tag */
  union {
    FhWelcome welcome;
    FhReason reason;            /* Reject, Bye, EOS */
    FhAnnounce announce;
    FhFrame frame;
    FhForget forget;
    FhCaps caps;
    FhPing ping;                /* Ping, Pong */
    uint32_t ring_size;
  } u;
} FhMsg;

/* fh_decode decodes packet p of n bytes into m. It returns 0, or -1 with a
 * message naming the message type and what was wrong in err (at most
 * errlen bytes, NUL-terminated). Messages a producer never sends (Hello,
 * Release, RequestKeyframe) decode as errors: a consumer must not accept
 * them. */
int fh_decode (const uint8_t * p, size_t n, FhMsg * m, char *err,
    size_t errlen);

/* Encoders write one packet (tag and body) into dst of cap bytes and return
 * its length, or 0 when it does not fit. */
typedef struct {
  const char *name, *stream, *policy;
  uint32_t max_in_flight, max_hold_ms, flags;
} FhHello;

size_t fh_encode_hello (uint8_t * dst, size_t cap, const FhHello * h);
size_t fh_encode_release (uint8_t * dst, size_t cap, const uint64_t * leases,
    int n);
size_t fh_encode_request_keyframe (uint8_t * dst, size_t cap);
size_t fh_encode_pong (uint8_t * dst, size_t cap, uint64_t token,
    int64_t mono_ns);
size_t fh_encode_bye (uint8_t * dst, size_t cap, uint16_t code,
    const char *reason);

/* fh_code_name is the name of a Reject/Bye code ("max_hold"), or
 * "unknown". */
const char *fh_code_name (unsigned code);
/* fh_type_name is the name of a message type ("Frame"), or "Unknown". */
const char *fh_type_name (int type);

#endif
