/* One connection of framehubsrc to a framehub producer: the socket, how
 * leases are released (Release messages or the release ring of
 * PROTOCOL.md §4.15), and the per-frame objects that tie a GstMemory to a
 * lease. */
#ifndef FRAMEHUB_FHCONN_H
#define FRAMEHUB_FHCONN_H

#include <glib.h>
#include <stdint.h>
#include <sys/types.h>

#include "fhproto.h"

/* Counters shared by an element and the leases it handed out: a buffer
 * may outlive the element that made it. */
typedef struct {
  gint ref;
  gint64 held;                  /* leases alive now (atomic) */
  guint64 released;             /* leases ended (atomic) */
  guint64 ring_writes;          /* releases written into a release ring (atomic) */
  guint64 release_msgs;         /* Release messages sent (atomic) */
} FhCounters;

FhCounters *fh_counters_new (void);
FhCounters *fh_counters_ref (FhCounters * c);
void fh_counters_unref (FhCounters * c);

/* FhConn is a connected SOCK_SEQPACKET socket to a producer and the
 * release path of its leases. It is reference counted: the element holds
 * one reference while it uses the connection, every live lease one. The
 * socket fd is owned by the connection and closed once, by fh_conn_close
 * (or the last unref). Releases may come from any thread; everything else
 * is for the element's streaming thread. */
typedef struct _FhConn FhConn;

/* fh_conn_dial connects to addr ("/path" or "@abstract") and checks that
 * the process listening there runs as one of the trusted uids: root, this
 * process's effective uid, or those of $FRAMEHUB_PRODUCER_UID (uids or
 * user names, comma-separated), like the Go SDK. On failure it returns
 * NULL with *err_no set (0 for a refused producer) and a message in err. */
FhConn *fh_conn_dial (const char *addr, FhCounters * ctr, int *err_no,
    char *err, size_t errlen);
FhConn *fh_conn_ref (FhConn * c);
void fh_conn_unref (FhConn * c);

/* fh_conn_fd is the socket, for poll(2); -1 once closed. */
int fh_conn_fd (FhConn * c);

/* fh_conn_send sends one packet (never with fds) without blocking; 0 or
 * an errno (EAGAIN: the producer's socket is full). */
int fh_conn_send (FhConn * c, const uint8_t * p, size_t n);

/* fh_conn_recv receives one packet without waiting. It returns its length,
 * 0 at EOF, or -errno (-EAGAIN: nothing to read). Received fds (at most
 * FH_MAX_FDS, MSG_CMSG_CLOEXEC) go to fds and *nfds; the caller owns them.
 * A truncated packet or control message is -EMSGSIZE, with its fds closed. */
ssize_t fh_conn_recv (FhConn * c, uint8_t * buf, size_t cap, int *fds,
    int *nfds);

/* fh_conn_map_ring maps the release ring the producer sent (the Ring
 * message's fd, which the caller still closes). 0, or -1 with a message. */
int fh_conn_map_ring (FhConn * c, int fd, uint32_t size, char *err,
    size_t errlen);

/* fh_conn_release ends lease id: into the release ring when there is one
 * and the producer did not ask to be woken, else queued for a Release
 * message, sent at once when the streaming thread is waiting for the
 * producer (fh_conn_wait_begin) or 64 are queued. It never blocks: while
 * the producer's socket is full the releases wait in the queue. After
 * fh_conn_close it does nothing: the producer released every lease of the
 * connection. Any thread. */
void fh_conn_release (FhConn * c, uint64_t id);

/* fh_conn_wait_begin sends the queued releases and marks the streaming
 * thread as waiting for the producer; fh_conn_wait_end clears the mark. */
void fh_conn_wait_begin (FhConn * c);
void fh_conn_wait_end (FhConn * c);

/* fh_conn_close says Bye (code, reason; code < 0: no Bye) without
 * blocking, closes the socket and unmaps the ring. Leases released later
 * are dropped. Idempotent. */
void fh_conn_close (FhConn * c, int code, const char *reason);

/* FhSurface is one announced surface: its fds (owned, closed when the
 * last reference goes) and one read-only mapping per fd, made on first
 * use and kept until then. The element's surface table holds a reference,
 * and so does every lease on a frame in it. */
typedef struct {
  gint ref;
  uint32_t id, gen;
  uint8_t kind;
  int nfds;
  int fds[FH_MAX_SURFACE_FDS];
  uint64_t size;                /* Announce size */
  gsize map_len[FH_MAX_SURFACE_FDS];    /* bytes mappable from each fd */
  GMutex lock;                  /* guards maps */
  uint8_t *maps[FH_MAX_SURFACE_FDS];
} FhSurface;

/* fh_surface_new takes ownership of fds (nfds of them, even on failure)
 * and returns the surface, or NULL with a message (an fd whose size cannot
 * be read). */
FhSurface *fh_surface_new (const FhSurfaceDesc * d, const int *fds,
    char *err, size_t errlen);
FhSurface *fh_surface_ref (FhSurface * s);
void fh_surface_unref (FhSurface * s);
/* fh_surface_map returns the read-only mapping of fd i, making it on first
 * use; NULL when mmap fails. */
uint8_t *fh_surface_map (FhSurface * s, int i);

/* FhLease is one Frame's lease: released (fh_conn_release) when its last
 * reference goes, which the GstMemory objects of the frame hold. */
typedef struct {
  gint ref;
  uint64_t id;
  FhConn *conn;
  FhSurface *surf;
  FhCounters *ctr;
} FhLease;

FhLease *fh_lease_new (FhConn * c, FhSurface * s, uint64_t id,
    FhCounters * ctr);
FhLease *fh_lease_ref (FhLease * l);
void fh_lease_unref (FhLease * l);

/* fh_default_addr is the SDK's default producer address (PROTOCOL.md §2):
 * $FRAMEHUB_SOCKET, /run/framehub/framehub.sock for root,
 * $XDG_RUNTIME_DIR/framehub/framehub.sock, or NULL. g_free it. */
char *fh_default_addr (void);

/* fh_mono_now is CLOCK_MONOTONIC in ns. */
int64_t fh_mono_now (void);

#endif
