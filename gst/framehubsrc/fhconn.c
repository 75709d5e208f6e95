/* A connection of framehubsrc to a producer: see fhconn.h. */
#define _GNU_SOURCE
#include "fhconn.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Release ring layout (PROTOCOL.md §4.15). */
#define RING_MAGIC 0x52524846u
#define RING_VERSION 1u
#define RING_OFF_HEAD 64
#define RING_OFF_KICK 72
#define RING_OFF_TAIL 128
#define RING_MIN_SIZE 4096

/* Releases queued before a Release message goes out regardless, and what
 * the queue holds while the producer's socket is full (no more than the
 * leases the producer granted, which a few dozen at most). */
#define FLUSH_AT 64
#define MAX_PENDING 4096

struct _FhConn {
  gint ref;
  FhCounters *ctr;
  GMutex lock;                  /* guards everything below */
  int fd;
  gboolean dead;                /* closed: releases are moot */
  gboolean waiting;             /* the streaming thread waits for the producer */
  uint64_t pending[MAX_PENDING];
  int npending;                 /* releases not sent yet */
  uint8_t *ring;                /* the release ring's mapping, or NULL */
  uint32_t ring_entries, ring_off;
  uint64_t ring_head;           /* our copy: only this side writes head */
};

int64_t
fh_mono_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---------------------------------------------------------------------- */
/* Counters.                                                               */

FhCounters *
fh_counters_new (void)
{
  FhCounters *c = g_new0 (FhCounters, 1);
  c->ref = 1;
  return c;
}

FhCounters *
fh_counters_ref (FhCounters * c)
{
  g_atomic_int_inc (&c->ref);
  return c;
}

void
fh_counters_unref (FhCounters * c)
{
  if (c && g_atomic_int_dec_and_test (&c->ref))
    g_free (c);
}

/* ---------------------------------------------------------------------- */
/* Addresses and credentials.                                              */

char *
fh_default_addr (void)
{
  const char *env = g_getenv ("FRAMEHUB_SOCKET");
  const char *xdg;

  if (env && *env)
    return g_strdup (env);
  if (geteuid () == 0)
    return g_strdup ("/run/framehub/framehub.sock");
  xdg = g_getenv ("XDG_RUNTIME_DIR");
  if (xdg && *xdg)
    return g_build_filename (xdg, "framehub", "framehub.sock", NULL);
  return NULL;
}

/* trusted_uid reports whether uid may be the producer's (see
 * fh_conn_dial); *why names the rule for an error message. */
static gboolean
trusted_uid (uid_t uid, char *why, size_t whylen)
{
  const char *env = g_getenv ("FRAMEHUB_PRODUCER_UID");
  gchar **parts;
  gboolean ok = FALSE;
  gboolean empty = TRUE;

  for (const char *p = env; p && *p && empty; p++)
    empty = g_ascii_isspace (*p);
  if (empty) {
    snprintf (why, whylen, "root or this process's uid %u",
        (unsigned) geteuid ());
    return uid == 0 || uid == geteuid ();
  }
  snprintf (why, whylen, "FRAMEHUB_PRODUCER_UID=%s", env);
  parts = g_strsplit (env, ",", -1);
  for (gchar ** p = parts; *p && !ok; p++) {
    gchar *s = g_strstrip (*p);
    char *end;
    unsigned long n;

    if (*s == 0)
      continue;
    errno = 0;
    n = strtoul (s, &end, 10);
    if (errno == 0 && *end == 0) {
      ok = (uid_t) n == uid;
    } else {
      struct passwd pw, *res = NULL;
      char buf[4096];
      if (getpwnam_r (s, &pw, buf, sizeof buf, &res) == 0 && res != NULL)
        ok = pw.pw_uid == uid;
    }
  }
  g_strfreev (parts);
  return ok;
}

FhConn *
fh_conn_dial (const char *addr, FhCounters * ctr, int *err_no, char *err,
    size_t errlen)
{
  struct sockaddr_un sa;
  socklen_t len;
  size_t n;
  int fd;
  struct ucred cred;
  socklen_t clen = sizeof cred;
  char why[256];
  FhConn *c;

  *err_no = 0;
  if (addr == NULL || *addr == 0) {
    snprintf (err, errlen, "no producer address: set the socket property, "
        "$FRAMEHUB_SOCKET or $XDG_RUNTIME_DIR");
    *err_no = EINVAL;
    return NULL;
  }
  memset (&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  n = strlen (addr);
  if (n >= sizeof sa.sun_path) {
    snprintf (err, errlen, "socket address %s is %zu bytes long, at most %zu",
        addr, n, sizeof sa.sun_path - 1);
    *err_no = ENAMETOOLONG;
    return NULL;
  }
  if (addr[0] == '@') {
    /* Abstract: a NUL, then the name, no trailing NUL (PROTOCOL.md §2). */
    memcpy (sa.sun_path + 1, addr + 1, n - 1);
    len = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + n);
  } else {
    memcpy (sa.sun_path, addr, n);
    len = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + n + 1);
  }
  fd = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err_no = errno;
    snprintf (err, errlen, "socket: %s", g_strerror (errno));
    return NULL;
  }
  while (connect (fd, (struct sockaddr *) &sa, len) < 0) {
    if (errno == EINTR)
      continue;
    *err_no = errno;
    snprintf (err, errlen, "connect to %s: %s", addr, g_strerror (errno));
    close (fd);
    return NULL;
  }
  if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
    *err_no = errno;
    snprintf (err, errlen, "%s: read the producer's credentials: %s", addr,
        g_strerror (errno));
    close (fd);
    return NULL;
  }
  if (!trusted_uid (cred.uid, why, sizeof why)) {
    snprintf (err, errlen, "%s is served by pid %d running as uid %u, and the "
        "expected producer uids are %s; nothing was sent to it. If that "
        "process is your producer, set FRAMEHUB_PRODUCER_UID=%u", addr,
        (int) cred.pid, (unsigned) cred.uid, why, (unsigned) cred.uid);
    close (fd);
    return NULL;
  }
  c = g_new0 (FhConn, 1);
  c->ref = 1;
  c->fd = fd;
  c->ctr = fh_counters_ref (ctr);
  g_mutex_init (&c->lock);
  return c;
}

FhConn *
fh_conn_ref (FhConn * c)
{
  g_atomic_int_inc (&c->ref);
  return c;
}

void
fh_conn_unref (FhConn * c)
{
  if (c == NULL || !g_atomic_int_dec_and_test (&c->ref))
    return;
  fh_conn_close (c, -1, NULL);
  g_mutex_clear (&c->lock);
  fh_counters_unref (c->ctr);
  g_free (c);
}

int
fh_conn_fd (FhConn * c)
{
  return c->fd;
}

static int
send_packet (int fd, const uint8_t * p, size_t n, int flags)
{
  for (;;) {
    if (send (fd, p, n, flags | MSG_NOSIGNAL) >= 0)
      return 0;
    if (errno != EINTR)
      return errno;
  }
}

int
fh_conn_send (FhConn * c, const uint8_t * p, size_t n)
{
  int rc = EPIPE;

  /* Under the lock: another thread (a force-key-unit event) may send
   * while the streaming thread closes the connection. Without blocking:
   * Pong and RequestKeyframe are best effort, like the producer's. */
  g_mutex_lock (&c->lock);
  if (!c->dead)
    rc = send_packet (c->fd, p, n, MSG_DONTWAIT);
  g_mutex_unlock (&c->lock);
  return rc;
}

ssize_t
fh_conn_recv (FhConn * c, uint8_t * buf, size_t cap, int *fds, int *nfds)
{
  union {
    struct cmsghdr h;
    char b[CMSG_SPACE (FH_MAX_FDS * sizeof (int))];
  } ctl;
  struct iovec iov = { buf, cap };
  struct msghdr mh = { 0 };
  struct cmsghdr *cm;
  ssize_t n;

  *nfds = 0;
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctl.b;
  mh.msg_controllen = sizeof ctl.b;
  do {
    n = recvmsg (c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  for (cm = CMSG_FIRSTHDR (&mh); cm; cm = CMSG_NXTHDR (&mh, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
      continue;
    size_t k = (cm->cmsg_len - CMSG_LEN (0)) / sizeof (int);
    for (size_t i = 0; i < k && *nfds < FH_MAX_FDS; i++)
      memcpy (&fds[(*nfds)++], CMSG_DATA (cm) + i * sizeof (int),
          sizeof (int));
  }
  if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    for (int i = 0; i < *nfds; i++)
      close (fds[i]);
    *nfds = 0;
    return -EMSGSIZE;
  }
  return n;
}

int
fh_conn_map_ring (FhConn * c, int fd, uint32_t size, char *err, size_t errlen)
{
  uint8_t *m;
  uint32_t magic, version, entries, off;

  if (size < RING_MIN_SIZE) {
    snprintf (err, errlen, "release ring of %u bytes, want at least %d",
        size, RING_MIN_SIZE);
    return -1;
  }
  m = mmap (NULL, RING_MIN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    snprintf (err, errlen, "mmap the release ring: %s", g_strerror (errno));
    return -1;
  }
  memcpy (&magic, m, 4);
  memcpy (&version, m + 4, 4);
  memcpy (&entries, m + 8, 4);
  memcpy (&off, m + 12, 4);
  if (magic != RING_MAGIC || version != RING_VERSION || entries == 0
      || off < RING_OFF_TAIL + 8 || (uint64_t) off + 8ull * entries > RING_MIN_SIZE) {
    snprintf (err, errlen, "not a release ring of a known layout: magic %#x "
        "version %u entries %u offset %u", magic, version, entries, off);
    munmap (m, RING_MIN_SIZE);
    return -1;
  }
  g_mutex_lock (&c->lock);
  if (c->ring || c->dead) {
    g_mutex_unlock (&c->lock);
    munmap (m, RING_MIN_SIZE);
    snprintf (err, errlen, "a second release ring");
    return c->dead ? 0 : -1;
  }
  c->ring = m;
  c->ring_entries = entries;
  c->ring_off = off;
  c->ring_head = __atomic_load_n ((uint64_t *) (m + RING_OFF_HEAD),
      __ATOMIC_ACQUIRE);
  g_mutex_unlock (&c->lock);
  return 0;
}

/* ring_push writes id into the ring; FALSE when it is full or the
 * producer asked to be woken (kick): then a Release message must go. */
static gboolean
ring_push (FhConn * c, uint64_t id)
{
  uint64_t tail = __atomic_load_n ((uint64_t *) (c->ring + RING_OFF_TAIL),
      __ATOMIC_ACQUIRE);
  uint32_t kick = __atomic_load_n ((uint32_t *) (c->ring + RING_OFF_KICK),
      __ATOMIC_ACQUIRE);

  if (kick != 0 || c->ring_head - tail >= c->ring_entries)
    return FALSE;
  __atomic_store_n ((uint64_t *) (c->ring + c->ring_off +
          8 * (c->ring_head % c->ring_entries)), id, __ATOMIC_RELAXED);
  c->ring_head++;
  __atomic_store_n ((uint64_t *) (c->ring + RING_OFF_HEAD), c->ring_head,
      __ATOMIC_RELEASE);
  return TRUE;
}

/* flush_locked sends the queued releases, FLUSH_AT per message, without
 * blocking: whatever thread frees a buffer releases its lease, and must
 * not hang on a producer that stopped reading. What does not go out stays
 * queued for the next flush. */
static void
flush_locked (FhConn * c)
{
  uint8_t buf[16 + 9 * FLUSH_AT];

  while (c->npending > 0 && !c->dead) {
    int k = MIN (c->npending, FLUSH_AT);
    size_t n = fh_encode_release (buf, sizeof buf, c->pending, k);
    int err = send_packet (c->fd, buf, n, MSG_DONTWAIT);
    if (err == EAGAIN || err == EWOULDBLOCK)
      return;
    /* Sent, or the producer is gone (then the streaming thread sees the
     * end of the connection, and the producer released everything). */
    memmove (c->pending, c->pending + k,
        (size_t) (c->npending - k) * sizeof c->pending[0]);
    c->npending -= k;
    if (err == 0)
      __atomic_add_fetch (&c->ctr->release_msgs, 1, __ATOMIC_RELAXED);
    else
      c->npending = 0;
  }
}

void
fh_conn_release (FhConn * c, uint64_t id)
{
  g_mutex_lock (&c->lock);
  if (!c->dead) {
    if (c->ring && ring_push (c, id)) {
      __atomic_add_fetch (&c->ctr->ring_writes, 1, __ATOMIC_RELAXED);
    } else {
      if (c->npending == MAX_PENDING)
        flush_locked (c);
      /* Still full: the producer has read nothing for thousands of
       * frames; it evicts this consumer past max_hold whatever we do. */
      if (c->npending < MAX_PENDING)
        c->pending[c->npending++] = id;
      if (c->waiting || c->npending >= FLUSH_AT)
        flush_locked (c);
    }
  }
  g_mutex_unlock (&c->lock);
}

void
fh_conn_wait_begin (FhConn * c)
{
  g_mutex_lock (&c->lock);
  flush_locked (c);
  c->waiting = TRUE;
  g_mutex_unlock (&c->lock);
}

void
fh_conn_wait_end (FhConn * c)
{
  g_mutex_lock (&c->lock);
  c->waiting = FALSE;
  g_mutex_unlock (&c->lock);
}

void
fh_conn_close (FhConn * c, int code, const char *reason)
{
  g_mutex_lock (&c->lock);
  if (!c->dead) {
    c->dead = TRUE;
    c->npending = 0;
    if (code >= 0) {
      uint8_t buf[512];
      size_t n = fh_encode_bye (buf, sizeof buf, (uint16_t) code, reason);
      if (n > 0)
        (void) send_packet (c->fd, buf, n, MSG_DONTWAIT);
    }
    close (c->fd);
    c->fd = -1;
    if (c->ring) {
      munmap (c->ring, RING_MIN_SIZE);
      c->ring = NULL;
    }
  }
  g_mutex_unlock (&c->lock);
}

/* ---------------------------------------------------------------------- */
/* Surfaces and leases.                                                    */

FhSurface *
fh_surface_new (const FhSurfaceDesc * d, const int *fds, char *err,
    size_t errlen)
{
  FhSurface *s = g_new0 (FhSurface, 1);

  s->ref = 1;
  s->id = d->id;
  s->gen = d->gen;
  s->kind = d->kind;
  s->size = d->size;
  s->nfds = d->nfds;
  g_mutex_init (&s->lock);
  for (int i = 0; i < d->nfds; i++)
    s->fds[i] = fds[i];
  for (int i = 0; i < d->nfds; i++) {
    /* Map each fd with its own size, capped at the announced one (§6). */
    off_t end = lseek (fds[i], 0, SEEK_END);
    if (end < 0) {
      snprintf (err, errlen, "surface %u fd %d: lseek: %s", d->id, i,
          g_strerror (errno));
      fh_surface_unref (s);
      return NULL;
    }
    s->map_len[i] = (gsize) MIN ((uint64_t) end, d->size);
  }
  return s;
}

FhSurface *
fh_surface_ref (FhSurface * s)
{
  g_atomic_int_inc (&s->ref);
  return s;
}

void
fh_surface_unref (FhSurface * s)
{
  if (s == NULL || !g_atomic_int_dec_and_test (&s->ref))
    return;
  for (int i = 0; i < s->nfds; i++) {
    if (s->maps[i])
      munmap (s->maps[i], s->map_len[i]);
    close (s->fds[i]);
  }
  g_mutex_clear (&s->lock);
  g_free (s);
}

uint8_t *
fh_surface_map (FhSurface * s, int i)
{
  uint8_t *m;

  if (i < 0 || i >= s->nfds || s->map_len[i] == 0)
    return NULL;
  g_mutex_lock (&s->lock);
  if (s->maps[i] == NULL) {
    m = mmap (NULL, s->map_len[i], PROT_READ, MAP_SHARED, s->fds[i], 0);
    if (m != MAP_FAILED)
      s->maps[i] = m;
  }
  m = s->maps[i];
  g_mutex_unlock (&s->lock);
  return m;
}

FhLease *
fh_lease_new (FhConn * c, FhSurface * s, uint64_t id, FhCounters * ctr)
{
  FhLease *l = g_new (FhLease, 1);
  l->ref = 1;
  l->id = id;
  l->conn = fh_conn_ref (c);
  l->surf = fh_surface_ref (s);
  l->ctr = fh_counters_ref (ctr);
  __atomic_add_fetch (&ctr->held, 1, __ATOMIC_RELAXED);
  return l;
}

FhLease *
fh_lease_ref (FhLease * l)
{
  g_atomic_int_inc (&l->ref);
  return l;
}

void
fh_lease_unref (FhLease * l)
{
  if (l == NULL || !g_atomic_int_dec_and_test (&l->ref))
    return;
  fh_conn_release (l->conn, l->id);
  __atomic_sub_fetch (&l->ctr->held, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch (&l->ctr->released, 1, __ATOMIC_RELAXED);
  fh_conn_unref (l->conn);
  fh_surface_unref (l->surf);
  fh_counters_unref (l->ctr);
  g_free (l);
}
