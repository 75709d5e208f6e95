/* framehub wire protocol, consumer side: see fhproto.h. */
#include "fhproto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Reader.                                                                 */

typedef struct {
  const uint8_t *p, *end;
  int depth;
  const char *msg;              /* message type, for errors */
  char *err;
  size_t errlen;
  int failed;
} R;

static int
fail (R * r, const char *fmt, ...)
{
  va_list ap;
  int n;

  if (r->failed)
    return -1;
  r->failed = 1;
  if (r->err == NULL || r->errlen == 0)
    return -1;
  n = snprintf (r->err, r->errlen, "decode %s: ", r->msg);
  if (n < 0 || (size_t) n >= r->errlen)
    return -1;
  va_start (ap, fmt);
  vsnprintf (r->err + n, r->errlen - (size_t) n, fmt, ap);
  va_end (ap);
  return -1;
}

static size_t
left (const R * r)
{
  return (size_t) (r->end - r->p);
}

static int
need (R * r, size_t n)
{
  if (left (r) < n)
    return fail (r, "truncated: %zu bytes needed, %zu left", n, left (r));
  return 0;
}

static uint64_t
be (const uint8_t * p, int n)
{
  uint64_t v = 0;
  for (int i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

/* read_len reads an n-byte big-endian length. */
static int
read_len (R * r, int n, uint64_t * v)
{
  if (need (r, (size_t) n))
    return -1;
  *v = be (r->p, n);
  r->p += n;
  return 0;
}

/* Integer of any msgpack format, or nil (0). *neg says whether *sv holds
 * a negative value; otherwise *uv holds it. */
static int
read_int (R * r, const char *field, uint64_t * uv, int64_t * sv, int *neg)
{
  uint8_t c;
  uint64_t v;

  if (need (r, 1))
    return -1;
  c = *r->p++;
  *neg = 0;
  if (c <= 0x7f) {
    *uv = c;
    return 0;
  }
  if (c >= 0xe0) {
    *neg = 1;
    *sv = (int8_t) c;
    return 0;
  }
  switch (c) {
    case 0xc0:
      *uv = 0;
      return 0;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
      return read_len (r, 1 << (c - 0xcc), uv);
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:{
      int n = 1 << (c - 0xd0);
      if (read_len (r, n, &v))
        return -1;
      /* sign-extend an n-byte two's complement value */
      if (n < 8 && (v >> (8 * n - 1)) & 1)
        v |= ~(uint64_t) 0 << (8 * n);
      if ((int64_t) v < 0) {
        *neg = 1;
        *sv = (int64_t) v;
      } else {
        *uv = v;
      }
      return 0;
    }
    case 0xca:
    case 0xcb:
      return fail (r, "%s: a float where an integer belongs", field);
  }
  return fail (r, "%s: msgpack type 0x%02x where an integer belongs", field,
      c);
}

static int
read_uint (R * r, const char *field, uint64_t max, uint64_t * out)
{
  uint64_t uv = 0;
  int64_t sv = 0;
  int neg;

  if (read_int (r, field, &uv, &sv, &neg))
    return -1;
  if (neg)
    return fail (r, "%s = %lld does not fit its type", field, (long long) sv);
  if (uv > max)
    return fail (r, "%s = %llu does not fit its type (at most %llu)", field,
        (unsigned long long) uv, (unsigned long long) max);
  *out = uv;
  return 0;
}

/* READ_U reads an unsigned field into dst, or returns -1 from the caller. */
#define READ_U(r, field, max, dst) do {                 \
    uint64_t v_;                                        \
    if (read_uint ((r), (field), (max), &v_) != 0)      \
      return -1;                                        \
    (dst) = v_;                                         \
  } while (0)

static int
read_i64 (R * r, const char *field, int64_t * out)
{
  uint64_t uv = 0;
  int64_t sv = 0;
  int neg;

  if (read_int (r, field, &uv, &sv, &neg))
    return -1;
  if (neg) {
    *out = sv;
    return 0;
  }
  if (uv > (uint64_t) INT64_MAX)
    return fail (r, "%s = %llu does not fit its type int64", field,
        (unsigned long long) uv);
  *out = (int64_t) uv;
  return 0;
}

static int
read_bool (R * r, const char *field, int *out)
{
  if (need (r, 1))
    return -1;
  switch (*r->p++) {
    case 0xc0:
    case 0xc2:
      *out = 0;
      return 0;
    case 0xc3:
      *out = 1;
      return 0;
  }
  return fail (r, "%s: not a boolean", field);
}

/* read_str reads a str or bin (or nil: empty) and points *s into the
 * packet. */
static int
read_str (R * r, const char *field, const uint8_t ** s, uint32_t * len)
{
  uint8_t c;
  uint64_t n;

  if (need (r, 1))
    return -1;
  c = *r->p++;
  if (c >= 0xa0 && c <= 0xbf)
    n = c & 0x1f;
  else if (c == 0xc0)
    n = 0;
  else if (c == 0xd9 || c == 0xc4) {
    if (read_len (r, 1, &n))
      return -1;
  } else if (c == 0xda || c == 0xc5) {
    if (read_len (r, 2, &n))
      return -1;
  } else if (c == 0xdb || c == 0xc6) {
    if (read_len (r, 4, &n))
      return -1;
  } else
    return fail (r, "%s: msgpack type 0x%02x where a string belongs", field, c);
  if (n > left (r))
    return fail (r, "%s: string of %llu bytes exceeds the packet", field,
        (unsigned long long) n);
  *s = r->p;
  *len = (uint32_t) n;
  r->p += n;
  return 0;
}

/* copy_str reads a string into dst; truncate: cut what does not fit,
 * else a string that does not fit is an error. */
static int
copy_str (R * r, const char *field, char *dst, size_t cap, int truncate)
{
  const uint8_t *s;
  uint32_t n;

  if (read_str (r, field, &s, &n))
    return -1;
  if (n >= cap) {
    if (!truncate)
      return fail (r, "%s: %u bytes, at most %zu expected", field, n, cap - 1);
    n = (uint32_t) (cap - 1);
  }
  memcpy (dst, s, n);
  dst[n] = 0;
  return 0;
}

/* read_container reads a map (pairs = 1) or array header, or nil (0
 * entries), and checks that the entries can fit in the packet. */
static int
read_container (R * r, const char *field, int map, uint32_t * out)
{
  uint8_t c;
  uint64_t n;

  if (need (r, 1))
    return -1;
  c = *r->p++;
  if (c == 0xc0)
    n = 0;
  else if (map && c >= 0x80 && c <= 0x8f)
    n = c & 0x0f;
  else if (!map && c >= 0x90 && c <= 0x9f)
    n = c & 0x0f;
  else if (c == (map ? 0xde : 0xdc)) {
    if (read_len (r, 2, &n))
      return -1;
  } else if (c == (map ? 0xdf : 0xdd)) {
    if (read_len (r, 4, &n))
      return -1;
  } else
    return fail (r, "%s: msgpack type 0x%02x where %s belongs", field, c,
        map ? "a map" : "an array");
  if (n * (map ? 2 : 1) > left (r))
    return fail (r, "%s: %llu entries exceed the packet", field,
        (unsigned long long) n);
  *out = (uint32_t) n;
  return 0;
}

static int
enter (R * r)
{
  if (++r->depth > FH_MAX_DEPTH)
    return fail (r, "containers nest deeper than %d", FH_MAX_DEPTH);
  return 0;
}

static int
read_map (R * r, const char *field, uint32_t * n)
{
  if (read_container (r, field, 1, n))
    return -1;
  return enter (r);
}

static int
read_array (R * r, const char *field, uint32_t * n)
{
  if (read_container (r, field, 0, n))
    return -1;
  return enter (r);
}

static void
leave (R * r)
{
  r->depth--;
}

/* skip skips one value of any type. */
static int
skip (R * r)
{
  uint8_t c;
  uint64_t n = 0;
  uint32_t k;

  if (need (r, 1))
    return -1;
  c = *r->p;
  if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
    r->p++;
    return 0;
  }
  if ((c >= 0xa0 && c <= 0xbf) || c == 0xd9 || c == 0xda || c == 0xdb
      || c == 0xc4 || c == 0xc5 || c == 0xc6) {
    const uint8_t *s;
    return read_str (r, "value", &s, &k);
  }
  if ((c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf
      || (c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd) {
    int map = (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf;
    if (read_container (r, "value", map, &k) || enter (r))
      return -1;
    for (uint64_t i = 0; i < (uint64_t) k * (map ? 2 : 1); i++)
      if (skip (r))
        return -1;
    leave (r);
    return 0;
  }
  r->p++;
  switch (c) {
    case 0xcc: case 0xd0: n = 1; break;
    case 0xcd: case 0xd1: n = 2; break;
    case 0xce: case 0xd2: case 0xca: n = 4; break;
    case 0xcf: case 0xd3: case 0xcb: n = 8; break;
    case 0xd4: n = 2; break;    /* fixext: type byte + data */
    case 0xd5: n = 3; break;
    case 0xd6: n = 5; break;
    case 0xd7: n = 9; break;
    case 0xd8: n = 17; break;
    case 0xc7: case 0xc8: case 0xc9:{
      uint64_t len;
      if (read_len (r, 1 << (c - 0xc7), &len))
        return -1;
      n = len + 1;
      break;
    }
    default:
      return fail (r, "msgpack type 0x%02x is never valid", c);
  }
  if (n > left (r))
    return fail (r, "value of %llu bytes exceeds the packet",
        (unsigned long long) n);
  r->p += n;
  return 0;
}

static int
key_is (const uint8_t * k, uint32_t n, const char *want)
{
  return strlen (want) == n && memcmp (k, want, n) == 0;
}

/* ---------------------------------------------------------------------- */
/* Message bodies.                                                         */

static int
read_plane (R * r, FhPlane * pl)
{
  uint32_t n;
  const uint8_t *k;
  uint32_t kn;

  memset (pl, 0, sizeof *pl);
  if (read_map (r, "plane", &n))
    return -1;
  for (uint32_t i = 0; i < n; i++) {
    if (read_str (r, "key", &k, &kn))
      return -1;
    if (key_is (k, kn, "offset"))
      READ_U (r, "plane offset", UINT32_MAX, pl->offset);
    else if (key_is (k, kn, "stride"))
      READ_U (r, "plane stride", UINT32_MAX, pl->stride);
    else if (key_is (k, kn, "size"))
      READ_U (r, "plane size", UINT32_MAX, pl->size);
    else if (key_is (k, kn, "fd"))
      READ_U (r, "plane fd", UINT8_MAX, pl->fd);
    else if (skip (r))
      return -1;
  }
  leave (r);
  return 0;
}

static int
read_planes (R * r, FhPlane * planes, int *n_planes)
{
  uint32_t n;

  if (read_array (r, "planes", &n))
    return -1;
  if (n > FH_MAX_PLANES)
    return fail (r, "%u planes, at most %d", n, FH_MAX_PLANES);
  for (uint32_t i = 0; i < n; i++)
    if (read_plane (r, &planes[i]))
      return -1;
  *n_planes = (int) n;
  leave (r);
  return 0;
}

/* caps_field reads key k of a Caps map (or Welcome.caps); 1: not a caps
 * key. */
static int
caps_field (R * r, const uint8_t * k, uint32_t kn, FhCaps * c)
{
  if (key_is (k, kn, "format"))
    return copy_str (r, "format", c->format, sizeof c->format, 0);
  if (key_is (k, kn, "width")) {
    READ_U (r, "width", UINT32_MAX, c->width);
    return 0;
  }
  if (key_is (k, kn, "height")) {
    READ_U (r, "height", UINT32_MAX, c->height);
    return 0;
  }
  if (key_is (k, kn, "fps_n")) {
    READ_U (r, "fps_n", UINT32_MAX, c->fps_n);
    return 0;
  }
  if (key_is (k, kn, "fps_d")) {
    READ_U (r, "fps_d", UINT32_MAX, c->fps_d);
    return 0;
  }
  if (key_is (k, kn, "planes"))
    return read_planes (r, c->planes, &c->n_planes);
  if (key_is (k, kn, "codec"))
    return copy_str (r, "codec", c->codec, sizeof c->codec, 1);
  return 1;
}

static int
read_caps (R * r, FhCaps * c)
{
  uint32_t n;
  const uint8_t *k;
  uint32_t kn;

  memset (c, 0, sizeof *c);
  if (read_map (r, "caps", &n))
    return -1;
  for (uint32_t i = 0; i < n; i++) {
    int rc;
    if (read_str (r, "key", &k, &kn))
      return -1;
    rc = caps_field (r, k, kn, c);
    if (rc < 0 || (rc > 0 && skip (r)))
      return -1;
  }
  leave (r);
  return 0;
}

static int
read_pool (R * r, FhWelcome * w)
{
  uint32_t n;
  const uint8_t *k;
  uint32_t kn;

  if (read_map (r, "pool", &n))
    return -1;
  for (uint32_t i = 0; i < n; i++) {
    if (read_str (r, "key", &k, &kn))
      return -1;
    if (key_is (k, kn, "min"))
      READ_U (r, "pool min", UINT32_MAX, w->pool_min);
    else if (key_is (k, kn, "max"))
      READ_U (r, "pool max", UINT32_MAX, w->pool_max);
    else if (key_is (k, kn, "surface_size"))
      READ_U (r, "pool surface_size", UINT64_MAX, w->pool_surface_size);
    else if (key_is (k, kn, "kind"))
      READ_U (r, "pool kind", UINT8_MAX, w->pool_kind);
    else if (skip (r))
      return -1;
  }
  leave (r);
  return 0;
}

static int
read_welcome (R * r, uint32_t n, FhWelcome * w)
{
  const uint8_t *k;
  uint32_t kn;

  for (uint32_t i = 0; i < n; i++) {
    if (read_str (r, "key", &k, &kn))
      return -1;
    if (key_is (k, kn, "major"))
      READ_U (r, "major", UINT16_MAX, w->major);
    else if (key_is (k, kn, "minor"))
      READ_U (r, "minor", UINT16_MAX, w->minor);
    else if (key_is (k, kn, "session"))
      READ_U (r, "session", UINT64_MAX, w->session);
    else if (key_is (k, kn, "stream")) {
      if (copy_str (r, "stream", w->stream, sizeof w->stream, 0))
        return -1;
    } else if (key_is (k, kn, "max_in_flight"))
      READ_U (r, "max_in_flight", UINT32_MAX, w->max_in_flight);
    else if (key_is (k, kn, "max_hold_ms"))
      READ_U (r, "max_hold_ms", UINT32_MAX, w->max_hold_ms);
    else if (key_is (k, kn, "policy")) {
      if (copy_str (r, "policy", w->policy, sizeof w->policy, 0))
        return -1;
    } else if (key_is (k, kn, "flags"))
      READ_U (r, "flags", UINT32_MAX, w->flags);
    else if (key_is (k, kn, "caps")) {
      if (read_caps (r, &w->caps))
        return -1;
    } else if (key_is (k, kn, "pool")) {
      if (read_pool (r, w))
        return -1;
    } else if (skip (r))
      return -1;
  }
  return 0;
}

/* read_reason reads Reject, Bye and EOS bodies. */
static int
read_reason (R * r, uint32_t n, FhReason * x)
{
  const uint8_t *k;
  uint32_t kn;

  for (uint32_t i = 0; i < n; i++) {
    if (read_str (r, "key", &k, &kn))
      return -1;
    if (key_is (k, kn, "code"))
      READ_U (r, "code", UINT16_MAX, x->code);
    else if (key_is (k, kn, "reason")) {
      if (copy_str (r, "reason", x->reason, sizeof x->reason, 1))
        return -1;
    } else if (skip (r))
      return -1;
  }
  return 0;
}

static int
read_device (R * r, FhSurfaceDesc * s)
{
  uint32_t n;
  const uint8_t *k;
  uint32_t kn;

  if (need (r, 1))
    return -1;
  if (*r->p == 0xc0) {          /* nil: no device */
    r->p++;
    return 0;
  }
  if (read_map (r, "device", &n))
    return -1;
  s->has_device = 1;
  for (uint32_t i = 0; i < n; i++) {
    if (read_str (r, "key", &k, &kn))
      return -1;
    if (key_is (k, kn, "no_cpu_map")) {
      if (read_bool (r, "no_cpu_map", &s->no_cpu_map))
        return -1;
    } else if (skip (r))
      return -1;
  }
  leave (r);
  return 0;
}

static int
read_surface (R * r, FhSurfaceDesc * s)
{
  uint32_t n;
  const uint8_t *k;
  uint32_t kn;

  memset (s, 0, sizeof *s);
  if (read_map (r, "surface", &n))
    return -1;
  for (uint32_t i = 0; i < n; i++) {
    if (read_str (r, "key", &k, &kn))
      return -1;
    if (key_is (k, kn, "id"))
      READ_U (r, "id", UINT32_MAX, s->id);
    else if (key_is (k, kn, "gen"))
      READ_U (r, "gen", UINT32_MAX, s->gen);
    else if (key_is (k, kn, "size"))
      READ_U (r, "size", UINT64_MAX, s->size);
    else if (key_is (k, kn, "kind"))
      READ_U (r, "kind", UINT8_MAX, s->kind);
    else if (key_is (k, kn, "nfds"))
      READ_U (r, "nfds", UINT8_MAX, s->nfds);
    else if (key_is (k, kn, "device")) {
      if (read_device (r, s))
        return -1;
    } else if (skip (r))
      return -1;
  }
  leave (r);
  if (s->nfds < 1 || s->nfds > FH_MAX_SURFACE_FDS)
    return fail (r, "surface %u has nfds %u, want 1..%d", s->id, s->nfds,
        FH_MAX_SURFACE_FDS);
  /* Kind 3 (cuda) is decoded so that the consumer can refuse it by name. */
  if (s->kind < FH_KIND_MEMFD || s->kind > FH_KIND_CUDA)
    return fail (r, "surface %u has unknown kind %u", s->id, s->kind);
  return 0;
}

static int
read_announce (R * r, uint32_t n, FhAnnounce * a)
{
  const uint8_t *k;
  uint32_t kn, ns;

  a->n_surfaces = 0;
  a->n_fds = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (read_str (r, "key", &k, &kn))
      return -1;
    if (!key_is (k, kn, "surfaces")) {
      if (skip (r))
        return -1;
      continue;
    }
    if (read_array (r, "surfaces", &ns))
      return -1;
    if (ns > FH_MAX_FDS)
      return fail (r, "%u surfaces, at most %d", ns, FH_MAX_FDS);
    a->n_surfaces = 0;
    a->n_fds = 0;
    for (uint32_t j = 0; j < ns; j++) {
      if (read_surface (r, &a->surfaces[j]))
        return -1;
      a->n_surfaces++;
      a->n_fds += a->surfaces[j].nfds;
    }
    leave (r);
  }
  if (a->n_surfaces == 0)
    return fail (r, "no surfaces");
  if (a->n_fds > FH_MAX_FDS)
    return fail (r, "%d fds in all, at most %d", a->n_fds, FH_MAX_FDS);
  return 0;
}

static int
read_frame (R * r, uint32_t n, FhFrame * f)
{
  const uint8_t *k;
  uint32_t kn;

  for (uint32_t i = 0; i < n; i++) {
    if (read_str (r, "key", &k, &kn))
      return -1;
    if (key_is (k, kn, "lease"))
      READ_U (r, "lease", UINT64_MAX, f->lease);
    else if (key_is (k, kn, "surface"))
      READ_U (r, "surface", UINT32_MAX, f->surface);
    else if (key_is (k, kn, "gen"))
      READ_U (r, "gen", UINT32_MAX, f->gen);
    else if (key_is (k, kn, "seq"))
      READ_U (r, "seq", UINT64_MAX, f->seq);
    else if (key_is (k, kn, "offset"))
      READ_U (r, "offset", UINT32_MAX, f->offset);
    else if (key_is (k, kn, "size"))
      READ_U (r, "size", UINT32_MAX, f->size);
    else if (key_is (k, kn, "pts")) {
      if (read_i64 (r, "pts", &f->pts))
        return -1;
    } else if (key_is (k, kn, "dts")) {
      if (read_i64 (r, "dts", &f->dts))
        return -1;
    } else if (key_is (k, kn, "dur")) {
      if (read_i64 (r, "dur", &f->dur))
        return -1;
    } else if (key_is (k, kn, "mono_ns")) {
      if (read_i64 (r, "mono_ns", &f->mono_ns))
        return -1;
    } else if (key_is (k, kn, "real_ns")) {
      if (read_i64 (r, "real_ns", &f->real_ns))
        return -1;
    } else if (key_is (k, kn, "flags"))
      READ_U (r, "flags", UINT32_MAX, f->flags);
    else if (key_is (k, kn, "dropped"))
      READ_U (r, "dropped", UINT32_MAX, f->dropped);
    else if (key_is (k, kn, "planes")) {
      if (read_planes (r, f->planes, &f->n_planes))
        return -1;
    } else if (skip (r))        /* meta and anything newer */
      return -1;
  }
  return 0;
}

static int
read_forget (R * r, uint32_t n, FhForget * f)
{
  const uint8_t *k;
  uint32_t kn, ni;

  f->n_ids = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (read_str (r, "key", &k, &kn))
      return -1;
    if (!key_is (k, kn, "ids")) {
      if (skip (r))
        return -1;
      continue;
    }
    if (read_array (r, "ids", &ni))
      return -1;
    /* read_container checked ni ≤ the bytes left < FH_MAX_FORGET */
    f->n_ids = 0;
    for (uint32_t j = 0; j < ni; j++) {
      READ_U (r, "id", UINT32_MAX, f->ids[j]);
      f->n_ids++;
    }
    leave (r);
  }
  return 0;
}

static int
read_ping (R * r, uint32_t n, FhPing * p)
{
  const uint8_t *k;
  uint32_t kn;

  for (uint32_t i = 0; i < n; i++) {
    if (read_str (r, "key", &k, &kn))
      return -1;
    if (key_is (k, kn, "token"))
      READ_U (r, "token", UINT64_MAX, p->token);
    else if (key_is (k, kn, "mono_ns")) {
      if (read_i64 (r, "mono_ns", &p->mono_ns))
        return -1;
    } else if (skip (r))
      return -1;
  }
  return 0;
}

static int
read_ring (R * r, uint32_t n, uint32_t * size)
{
  const uint8_t *k;
  uint32_t kn;

  for (uint32_t i = 0; i < n; i++) {
    if (read_str (r, "key", &k, &kn))
      return -1;
    if (key_is (k, kn, "size"))
      READ_U (r, "size", UINT32_MAX, *size);
    else if (skip (r))
      return -1;
  }
  return 0;
}

static const char *const type_names[] = {
  "Unknown", "Hello", "Welcome", "Reject", "Announce", "Frame", "Forget",
  "Caps", "EOS", "Release", "RequestKeyframe", "Ping", "Pong", "Bye", "Ring"
};

const char *
fh_type_name (int type)
{
  if (type < 0 || type > FH_MSG_RING)
    return "Unknown";
  return type_names[type];
}

static const char *const code_names[] = {
  "ok", "version", "unknown_stream", "denied", "too_many", "protocol",
  "max_hold", "shutdown", "bad_release", "invalid_argument", "lossless",
  "no_capacity", "reclaimed", "rate_limit"
};

const char *
fh_code_name (unsigned code)
{
  if (code >= sizeof code_names / sizeof code_names[0])
    return "unknown";
  return code_names[code];
}

int
fh_decode (const uint8_t * p, size_t n, FhMsg * m, char *err, size_t errlen)
{
  R r = { 0 };
  uint32_t nkeys;
  int rc = 0;

  if (err && errlen)
    err[0] = 0;
  r.err = err;
  r.errlen = errlen;
  r.msg = "packet";
  if (n == 0)
    return fail (&r, "empty packet");
  m->tag = p[0];
  m->type = p[0] <= FH_MSG_RING ? p[0] : FH_MSG_UNKNOWN;
  if (m->type == FH_MSG_UNKNOWN)
    return 0;                   /* ignored without parsing its body (§3) */
  r.msg = fh_type_name (m->type);
  switch (m->type) {
    case FH_MSG_HELLO:
    case FH_MSG_RELEASE:
    case FH_MSG_REQUEST_KEYFRAME:
      return fail (&r, "a consumer's message, never sent by a producer");
  }
  r.p = p + 1;
  r.end = p + n;
  if (r.p == r.end)
    return fail (&r, "no body after the type tag");
  if (*r.p >= 0x90 && *r.p <= 0x9f)
    return fail (&r, "body is an array; producers send maps");
  if (read_map (&r, "body", &nkeys))
    return -1;
  switch (m->type) {
    case FH_MSG_WELCOME:
      memset (&m->u.welcome, 0, sizeof m->u.welcome);
      rc = read_welcome (&r, nkeys, &m->u.welcome);
      break;
    case FH_MSG_REJECT:
    case FH_MSG_BYE:
    case FH_MSG_EOS:
      memset (&m->u.reason, 0, sizeof m->u.reason);
      rc = read_reason (&r, nkeys, &m->u.reason);
      break;
    case FH_MSG_ANNOUNCE:
      rc = read_announce (&r, nkeys, &m->u.announce);
      break;
    case FH_MSG_FRAME:
      memset (&m->u.frame, 0, sizeof m->u.frame);
      rc = read_frame (&r, nkeys, &m->u.frame);
      break;
    case FH_MSG_FORGET:
      rc = read_forget (&r, nkeys, &m->u.forget);
      break;
    case FH_MSG_CAPS:{
      FhCaps *c = &m->u.caps;
      const uint8_t *k;
      uint32_t kn;
      memset (c, 0, sizeof *c);
      for (uint32_t i = 0; i < nkeys && rc == 0; i++) {
        if (read_str (&r, "key", &k, &kn))
          return -1;
        rc = caps_field (&r, k, kn, c);
        if (rc > 0)
          rc = skip (&r);
      }
      break;
    }
    case FH_MSG_PING:
    case FH_MSG_PONG:
      rc = read_ping (&r, nkeys, &m->u.ping);
      break;
    case FH_MSG_RING:
      m->u.ring_size = 0;
      rc = read_ring (&r, nkeys, &m->u.ring_size);
      break;
  }
  if (rc)
    return -1;
  leave (&r);
  if (r.p != r.end)
    return fail (&r, "%zu bytes after the body", left (&r));
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Writer.                                                                 */

typedef struct {
  uint8_t *p, *end;
  int overflow;
} W;

static void
put (W * w, const void *b, size_t n)
{
  if (w->overflow || (size_t) (w->end - w->p) < n) {
    w->overflow = 1;
    return;
  }
  memcpy (w->p, b, n);
  w->p += n;
}

static void
put_be (W * w, uint8_t code, uint64_t v, int n)
{
  uint8_t b[9];
  b[0] = code;
  for (int i = 0; i < n; i++)
    b[1 + i] = (uint8_t) (v >> (8 * (n - 1 - i)));
  put (w, b, (size_t) n + 1);
}

/* Shortest form, as the reference encoder writes. */
static void
put_uint (W * w, uint64_t v)
{
  if (v <= 0x7f) {
    uint8_t b = (uint8_t) v;
    put (w, &b, 1);
  } else if (v <= UINT8_MAX)
    put_be (w, 0xcc, v, 1);
  else if (v <= UINT16_MAX)
    put_be (w, 0xcd, v, 2);
  else if (v <= UINT32_MAX)
    put_be (w, 0xce, v, 4);
  else
    put_be (w, 0xcf, v, 8);
}

static void
put_int (W * w, int64_t v)
{
  if (v >= 0)
    put_uint (w, (uint64_t) v);
  else if (v >= -32) {
    uint8_t b = (uint8_t) (int8_t) v;
    put (w, &b, 1);
  } else if (v >= INT8_MIN)
    put_be (w, 0xd0, (uint64_t) v, 1);
  else if (v >= INT16_MIN)
    put_be (w, 0xd1, (uint64_t) v, 2);
  else if (v >= INT32_MIN)
    put_be (w, 0xd2, (uint64_t) v, 4);
  else
    put_be (w, 0xd3, (uint64_t) v, 8);
}

static void
put_str (W * w, const char *s)
{
  size_t n = strlen (s);
  if (n <= 31) {
    uint8_t b = (uint8_t) (0xa0 | n);
    put (w, &b, 1);
  } else if (n <= UINT8_MAX)
    put_be (w, 0xd9, n, 1);
  else if (n <= UINT16_MAX)
    put_be (w, 0xda, n, 2);
  else
    put_be (w, 0xdb, n, 4);
  put (w, s, n);
}

static void
put_map (W * w, uint32_t n)
{
  if (n <= 15) {
    uint8_t b = (uint8_t) (0x80 | n);
    put (w, &b, 1);
  } else if (n <= UINT16_MAX)
    put_be (w, 0xde, n, 2);
  else
    put_be (w, 0xdf, n, 4);
}

static void
put_array (W * w, uint32_t n)
{
  if (n <= 15) {
    uint8_t b = (uint8_t) (0x90 | n);
    put (w, &b, 1);
  } else if (n <= UINT16_MAX)
    put_be (w, 0xdc, n, 2);
  else
    put_be (w, 0xdd, n, 4);
}

static W
start (uint8_t * dst, size_t cap, uint8_t tag)
{
  W w = { dst, dst + cap, 0 };
  put (&w, &tag, 1);
  return w;
}

static size_t
finish (W * w, uint8_t * dst)
{
  return w->overflow ? 0 : (size_t) (w->p - dst);
}

size_t
fh_encode_hello (uint8_t * dst, size_t cap, const FhHello * h)
{
  W w = start (dst, cap, FH_MSG_HELLO);
  put_map (&w, 8);
  put_str (&w, "major");
  put_uint (&w, FH_VERSION_MAJOR);
  put_str (&w, "minor");
  put_uint (&w, FH_VERSION_MINOR);
  put_str (&w, "name");
  put_str (&w, h->name ? h->name : "");
  put_str (&w, "stream");
  put_str (&w, h->stream ? h->stream : "");
  put_str (&w, "max_in_flight");
  put_uint (&w, h->max_in_flight);
  put_str (&w, "max_hold_ms");
  put_uint (&w, h->max_hold_ms);
  put_str (&w, "policy");
  put_str (&w, h->policy ? h->policy : "");
  put_str (&w, "flags");
  put_uint (&w, h->flags);
  return finish (&w, dst);
}

size_t
fh_encode_release (uint8_t * dst, size_t cap, const uint64_t * leases, int n)
{
  W w = start (dst, cap, FH_MSG_RELEASE);
  put_map (&w, 1);
  put_str (&w, "leases");
  put_array (&w, (uint32_t) n);
  for (int i = 0; i < n; i++)
    put_uint (&w, leases[i]);
  return finish (&w, dst);
}

size_t
fh_encode_request_keyframe (uint8_t * dst, size_t cap)
{
  W w = start (dst, cap, FH_MSG_REQUEST_KEYFRAME);
  put_map (&w, 0);
  return finish (&w, dst);
}

size_t
fh_encode_pong (uint8_t * dst, size_t cap, uint64_t token, int64_t mono_ns)
{
  W w = start (dst, cap, FH_MSG_PONG);
  put_map (&w, 2);
  put_str (&w, "token");
  put_uint (&w, token);
  put_str (&w, "mono_ns");
  put_int (&w, mono_ns);
  return finish (&w, dst);
}

size_t
fh_encode_bye (uint8_t * dst, size_t cap, uint16_t code, const char *reason)
{
  W w = start (dst, cap, FH_MSG_BYE);
  put_map (&w, 2);
  put_str (&w, "code");
  put_uint (&w, code);
  put_str (&w, "reason");
  put_str (&w, reason ? reason : "");
  return finish (&w, dst);
}
