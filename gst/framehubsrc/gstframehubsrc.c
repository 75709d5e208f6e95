/* framehubsrc: a live GStreamer source of one framehub stream, written in C
 * against docs/PROTOCOL.md (why C, and not the Go SDK: docs/GSTREAMER.md).
 *
 * The streaming thread does all the protocol work: it connects and says
 * Hello (in start, so that a refusal fails the state change), then in
 * create waits in poll(2) on the socket and on an eventfd that unlock()
 * writes, reads one packet at a time without blocking and answers it.
 * Every Frame becomes a GstBuffer whose memories wrap the surface's fd
 * (fhmem.c): no pixel is copied unless downstream can read neither the
 * producer's plane layout (it accepts no GstVideoMeta) nor GStreamer's
 * default one, and then only once, counted in "stats". The lease ends when
 * the last memory of the frame is freed, on whatever thread does it; the
 * release goes into the release ring when the producer granted one, else
 * into a Release message (fhconn.c). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstframehubsrc.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fhmem.h"

GST_DEBUG_CATEGORY_STATIC (gst_framehub_src_debug);
#define GST_CAT_DEFAULT gst_framehub_src_debug

enum {
  PROP_0,
  PROP_SOCKET,
  PROP_STREAM,
  PROP_CONSUMER_NAME,
  PROP_MAX_IN_FLIGHT,
  PROP_MAX_HOLD,
  PROP_POLICY,
  PROP_RECONNECT,
  PROP_WAIT_FOR_KEYFRAME,
  PROP_STATS
};

#define DEFAULT_STREAM "raw"
#define DEFAULT_MAX_IN_FLIGHT 0
#define DEFAULT_MAX_HOLD 0
#define DEFAULT_POLICY GST_FRAMEHUB_SRC_POLICY_QUEUE
#define DEFAULT_RECONNECT FALSE
#define DEFAULT_WAIT_FOR_KEYFRAME TRUE

/* How long the handshake may take, and the reconnect back-off (the SDK's). */
#define HANDSHAKE_TIMEOUT_NS (10 * GST_SECOND)
#define RETRY_MIN_NS (100 * GST_MSECOND)
#define RETRY_MAX_NS (5 * GST_SECOND)

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("video/x-raw; "
        "video/x-h264, stream-format = (string) byte-stream, "
        "alignment = (string) au"));

#define gst_framehub_src_parent_class parent_class
G_DEFINE_TYPE (GstFramehubSrc, gst_framehub_src, GST_TYPE_PUSH_SRC);

static GType
gst_framehub_src_policy_get_type (void)
{
  static GType type;
  static const GEnumValue values[] = {
    {GST_FRAMEHUB_SRC_POLICY_QUEUE,
        "queue: a frame published while this consumer holds its whole budget is skipped for it",
        "queue"},
    {GST_FRAMEHUB_SRC_POLICY_LATEST,
        "latest: the newest such frame waits and is sent as soon as a buffer is released",
        "latest"},
    {0, NULL, NULL}
  };
  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstFramehubSrcPolicy", values));
  return type;
}

/* ---------------------------------------------------------------------- */
/* Waiting.                                                                */

enum { WAIT_READY, WAIT_UNLOCKED, WAIT_TIMEOUT };

/* wait_fd waits until fd is readable, unlock () was called, or timeout_ns
 * (< 0: none) passed. */
static int
wait_fd (GstFramehubSrc * self, int fd, gint64 timeout_ns)
{
  struct pollfd p[2] = { {self->wakefd, POLLIN, 0}, {fd, POLLIN, 0} };
  gint64 deadline = timeout_ns < 0 ? -1 : fh_mono_now () + timeout_ns;

  for (;;) {
    int ms = -1, n;
    if (deadline >= 0) {
      gint64 left = deadline - fh_mono_now ();
      if (left <= 0)
        return WAIT_TIMEOUT;
      ms = (int) MIN ((left + GST_MSECOND - 1) / GST_MSECOND, G_MAXINT);
    }
    n = poll (p, fd >= 0 ? 2 : 1, ms);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 || (p[0].revents & POLLIN))
      return WAIT_UNLOCKED;
    if (n > 0)
      return WAIT_READY;
  }
}

/* ---------------------------------------------------------------------- */
/* Caps.                                                                   */

/* caps_from_producer checks the producer's caps and derives the element's
 * view of them; FALSE with a reason when framehubsrc cannot carry them. */
static gboolean
caps_from_producer (GstFramehubSrc * self, const FhCaps * c, GString * why)
{
  GstVideoFormat fmt;
  GstVideoInfo vi;

  if (c->n_planes == 0) {
    if (g_ascii_strcasecmp (c->format, "H264") != 0) {
      g_string_printf (why, "the stream's format %s is not one framehubsrc "
          "carries (raw video formats and H264)", c->format);
      return FALSE;
    }
    GST_OBJECT_LOCK (self);
    self->caps = *c;
    self->encoded = TRUE;
    self->have_caps = TRUE;
    GST_OBJECT_UNLOCK (self);
    return TRUE;
  }
  fmt = gst_video_format_from_string (c->format);
  if (fmt == GST_VIDEO_FORMAT_UNKNOWN || c->width == 0 || c->height == 0
      || !gst_video_info_set_format (&vi, fmt, c->width, c->height)) {
    g_string_printf (why, "the stream's caps %s %ux%u are not raw video "
        "GStreamer knows", c->format, c->width, c->height);
    return FALSE;
  }
  if ((guint) c->n_planes != GST_VIDEO_INFO_N_PLANES (&vi)) {
    g_string_printf (why, "the stream's caps give %d planes for %s, which "
        "has %u", c->n_planes, c->format, GST_VIDEO_INFO_N_PLANES (&vi));
    return FALSE;
  }
  GST_VIDEO_INFO_FPS_N (&vi) = c->fps_d ? (gint) c->fps_n : 0;
  GST_VIDEO_INFO_FPS_D (&vi) = c->fps_d ? (gint) c->fps_d : 1;
  GST_OBJECT_LOCK (self);
  self->caps = *c;
  self->vinfo = vi;
  self->encoded = FALSE;
  self->have_caps = TRUE;
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

/* make_caps returns the GstCaps of the current caps. Object lock held. */
static GstCaps *
make_caps (GstFramehubSrc * self)
{
  const FhCaps *c = &self->caps;

  if (self->encoded) {
    GstCaps *caps = gst_caps_new_simple ("video/x-h264",
        "stream-format", G_TYPE_STRING, "byte-stream",
        "alignment", G_TYPE_STRING, "au", NULL);
    /* What the producer does not know, it leaves out (h264parse reads it
     * from the SPS). */
    if (c->width && c->height)
      gst_caps_set_simple (caps, "width", G_TYPE_INT, (gint) c->width,
          "height", G_TYPE_INT, (gint) c->height, "pixel-aspect-ratio",
          GST_TYPE_FRACTION, 1, 1, NULL);
    if (c->fps_d)
      gst_caps_set_simple (caps, "framerate", GST_TYPE_FRACTION,
          (gint) c->fps_n, (gint) c->fps_d, NULL);
    return caps;
  }
  return gst_video_info_to_caps (&self->vinfo);
}

static GstCaps *
gst_framehub_src_get_caps (GstBaseSrc * bsrc, GstCaps * filter)
{
  GstFramehubSrc *self = GST_FRAMEHUB_SRC (bsrc);
  GstCaps *caps, *out;

  GST_OBJECT_LOCK (self);
  caps = self->have_caps ? make_caps (self) :
      gst_pad_get_pad_template_caps (GST_BASE_SRC_PAD (bsrc));
  GST_OBJECT_UNLOCK (self);
  if (filter == NULL)
    return caps;
  out = gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST);
  gst_caps_unref (caps);
  return out;
}

static gboolean
gst_framehub_src_negotiate (GstBaseSrc * bsrc)
{
  GstFramehubSrc *self = GST_FRAMEHUB_SRC (bsrc);
  GstCaps *caps;
  gboolean ok;

  GST_OBJECT_LOCK (self);
  if (!self->have_caps) {
    /* Not connected yet (reconnect=true and no producer): create
     * negotiates once the Welcome gives the caps. */
    GST_OBJECT_UNLOCK (self);
    return TRUE;
  }
  caps = make_caps (self);
  GST_OBJECT_UNLOCK (self);
  GST_DEBUG_OBJECT (self, "caps %" GST_PTR_FORMAT, caps);
  ok = gst_base_src_set_caps (bsrc, caps);
  gst_caps_unref (caps);
  if (ok)
    self->caps_changed = FALSE;
  return ok;
}

static gboolean
gst_framehub_src_decide_allocation (GstBaseSrc * bsrc, GstQuery * query)
{
  GstFramehubSrc *self = GST_FRAMEHUB_SRC (bsrc);

  self->downstream_meta =
      gst_query_find_allocation_meta (query, GST_VIDEO_META_API_TYPE, NULL);
  GST_DEBUG_OBJECT (self, "downstream %s GstVideoMeta",
      self->downstream_meta ? "accepts" : "does not accept");
  return GST_BASE_SRC_CLASS (parent_class)->decide_allocation (bsrc, query);
}

/* ---------------------------------------------------------------------- */
/* Connection.                                                             */

typedef enum { CONN_OK, CONN_RETRY, CONN_FATAL, CONN_FLUSHING } ConnResult;

/* valid_name checks Hello.name's rule (PROTOCOL.md §4.1). */
static gboolean
valid_name (const gchar * name)
{
  if (strlen (name) > FH_MAX_NAME || !g_utf8_validate (name, -1, NULL))
    return FALSE;
  for (const gchar * p = name; *p; p = g_utf8_next_char (p))
    if (!g_unichar_isprint (g_utf8_get_char (p)))
      return FALSE;
  return TRUE;
}

static void
close_fds (const int *fds, int n)
{
  for (int i = 0; i < n; i++)
    close (fds[i]);
}

static void
set_conn (GstFramehubSrc * self, FhConn * c)
{
  FhConn *old;
  GST_OBJECT_LOCK (self);
  old = self->conn;
  self->conn = c;
  GST_OBJECT_UNLOCK (self);
  if (old)
    fh_conn_unref (old);
}

/* drop_connection ends the connection (Bye code unless < 0) and forgets
 * its surfaces; buffers still downstream keep their memory, and their
 * releases are dropped. */
static void
drop_connection (GstFramehubSrc * self, int code, const char *reason)
{
  if (self->conn)
    fh_conn_close (self->conn, code, reason);
  set_conn (self, NULL);
  g_hash_table_remove_all (self->surfaces);
}

/* connect_once dials, says Hello and waits for the Welcome. */
static ConnResult
connect_once (GstFramehubSrc * self, GString * why)
{
  gchar *addr, *stream, *name;
  guint max_in_flight, max_hold;
  GstFramehubSrcPolicy policy;
  char err[1024];
  int err_no, fds[FH_MAX_FDS], nfds;
  uint8_t hello[512];
  size_t hn;
  FhConn *c;
  FhHello h;
  gint64 deadline;
  gboolean reset_seen = FALSE;
  ConnResult res = CONN_FATAL;

  GST_OBJECT_LOCK (self);
  addr = self->socket ? g_strdup (self->socket) : fh_default_addr ();
  stream = g_strdup (self->stream);
  name = g_strdup (self->consumer_name && *self->consumer_name ?
      self->consumer_name : GST_OBJECT_NAME (self));
  max_in_flight = self->max_in_flight;
  max_hold = self->max_hold_ms;
  policy = self->policy;
  GST_OBJECT_UNLOCK (self);

  if (!valid_name (name)) {
    g_string_printf (why, "consumer name \"%s\" (the consumer-name property, "
        "else the element's name) must be at most %d bytes of printable "
        "UTF-8", name, FH_MAX_NAME);
    goto out;
  }
  c = fh_conn_dial (addr, self->ctr, &err_no, err, sizeof err);
  if (c == NULL) {
    g_string_assign (why, err);
    /* No producer there (yet): worth retrying. A refused producer uid or
     * a bad address is not. */
    if (err_no == ENOENT || err_no == ECONNREFUSED || err_no == EAGAIN)
      res = CONN_RETRY;
    goto out;
  }
  h.name = name;
  h.stream = stream;
  h.policy = policy == GST_FRAMEHUB_SRC_POLICY_LATEST ? "latest" : "queue";
  h.max_in_flight = max_in_flight;
  h.max_hold_ms = max_hold;
  /* The release ring saves a system call per frame; the producer grants it
   * to queue-policy consumers only. */
  h.flags = policy == GST_FRAMEHUB_SRC_POLICY_QUEUE ? FH_HELLO_RELEASE_RING : 0;
  hn = fh_encode_hello (hello, sizeof hello, &h);
  /* A producer refusing at once may have closed before the Hello goes
   * out: its Reject is still to be read (PROTOCOL.md §5). */
  (void) fh_conn_send (c, hello, hn);
  deadline = fh_mono_now () + HANDSHAKE_TIMEOUT_NS;
  for (;;) {
    ssize_t n;
    int w = wait_fd (self, fh_conn_fd (c), MAX (0, deadline - fh_mono_now ()));
    if (w == WAIT_UNLOCKED) {
      res = CONN_FLUSHING;
      break;
    }
    if (w == WAIT_TIMEOUT) {
      g_string_printf (why, "%s: no Welcome within %d s", addr,
          (int) (HANDSHAKE_TIMEOUT_NS / GST_SECOND));
      res = CONN_RETRY;
      break;
    }
    n = fh_conn_recv (c, self->rbuf, FH_MAX_PACKET, fds, &nfds);
    if (n == -EAGAIN)
      continue;
    if (n == -ECONNRESET && !reset_seen) {
      reset_seen = TRUE;        /* reported once, ahead of the Reject (§2) */
      continue;
    }
    if (n <= 0) {
      g_string_printf (why, "%s closed the connection before its Welcome%s%s",
          addr, n < 0 ? ": " : "", n < 0 ? g_strerror ((int) -n) : "");
      res = CONN_RETRY;
      break;
    }
    close_fds (fds, nfds);      /* nothing before the Welcome carries fds */
    if (fh_decode (self->rbuf, (size_t) n, self->msg, err, sizeof err) < 0) {
      g_string_printf (why, "%s: malformed message from the producer: %s",
          addr, err);
      break;
    }
    if (self->msg->type == FH_MSG_UNKNOWN)
      continue;
    if (self->msg->type == FH_MSG_REJECT || self->msg->type == FH_MSG_BYE) {
      FhReason *r = &self->msg->u.reason;
      g_string_printf (why, "the producer at %s refused the subscription to "
          "stream \"%s\": %s (code %u): %s", addr, stream,
          fh_code_name (r->code), r->code, r->reason);
      if (r->code == FH_CODE_VERSION && strstr (r->reason, "cuda"))
        g_string_append (why, " (framehubsrc takes CPU memory only: memfd "
            "and dmabuf surfaces)");
      if (r->code == FH_CODE_TOO_MANY || r->code == FH_CODE_SHUTDOWN
          || r->code == FH_CODE_NO_CAPACITY)
        res = CONN_RETRY;
      break;
    }
    if (self->msg->type != FH_MSG_WELCOME) {
      g_string_printf (why, "%s: expected Welcome, got %s", addr,
          fh_type_name (self->msg->type));
      break;
    }
    if (self->msg->u.welcome.major != FH_VERSION_MAJOR) {
      g_string_printf (why, "%s speaks protocol %u.%u, framehubsrc %d.%d",
          addr, self->msg->u.welcome.major, self->msg->u.welcome.minor,
          FH_VERSION_MAJOR, FH_VERSION_MINOR);
      break;
    }
    if (self->msg->u.welcome.pool_kind == FH_KIND_CUDA) {
      g_string_printf (why, "stream \"%s\" carries cuda surfaces (GPU "
          "memory): framehubsrc takes CPU memory only", stream);
      break;
    }
    if (!caps_from_producer (self, &self->msg->u.welcome.caps, why))
      break;
    self->welcome = self->msg->u.welcome;
    GST_INFO_OBJECT (self, "subscribed to %s stream \"%s\" as \"%s\": "
        "session %" G_GUINT64_FORMAT ", budget %u (asked %u), max_hold %u ms, "
        "%s %ux%u", addr, stream, name, self->welcome.session,
        self->welcome.max_in_flight, max_in_flight, self->welcome.max_hold_ms,
        self->caps.format, self->caps.width, self->caps.height);
    set_conn (self, c);
    c = NULL;
    self->caps_changed = TRUE;
    res = CONN_OK;
    break;
  }
  if (c) {
    fh_conn_close (c, res == CONN_FLUSHING ? FH_CODE_OK : -1,
        "consumer closing");
    fh_conn_unref (c);
  }
out:
  g_free (addr);
  g_free (stream);
  g_free (name);
  return res;
}

/* ensure_connected connects, waiting between attempts when reconnect is
 * on, until connected, unlocked, or refused for good. */
static GstFlowReturn
ensure_connected (GstFramehubSrc * self)
{
  GString *why = g_string_new (NULL);
  GstFlowReturn ret = GST_FLOW_OK;
  gboolean reconnect;

  while (self->conn == NULL) {
    ConnResult r = connect_once (self, why);
    GST_OBJECT_LOCK (self);
    reconnect = self->reconnect;
    GST_OBJECT_UNLOCK (self);
    if (r == CONN_OK) {
      if (self->connected_once)
        self->reconnects++;
      self->connected_once = TRUE;
      self->retry_ns = RETRY_MIN_NS;
      self->discont = TRUE;
      self->waiting_key = self->encoded && self->wait_keyframe;
      self->key_requested = FALSE;
      break;
    }
    if (r == CONN_FLUSHING) {
      ret = GST_FLOW_FLUSHING;
      break;
    }
    if (r == CONN_FATAL || !reconnect) {
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
          ("Could not subscribe to the framehub producer."), ("%s", why->str));
      ret = GST_FLOW_ERROR;
      break;
    }
    GST_INFO_OBJECT (self, "retrying in %" GST_TIME_FORMAT ": %s",
        GST_TIME_ARGS (self->retry_ns), why->str);
    if (wait_fd (self, -1, self->retry_ns) == WAIT_UNLOCKED) {
      ret = GST_FLOW_FLUSHING;
      break;
    }
    self->retry_ns = MIN (2 * self->retry_ns, RETRY_MAX_NS);
  }
  g_string_free (why, TRUE);
  return ret;
}

/* lost handles the end of the connection: the producer said Bye (code,
 * reason), closed it (code < 0), or broke the protocol (protocol). With
 * reconnect it returns GST_FLOW_OK and create reconnects; else EOS for a
 * producer that went away, an error for one that evicted this consumer. */
static GstFlowReturn
lost (GstFramehubSrc * self, int code, const char *reason, gboolean protocol)
{
  gboolean reconnect;
  gchar *what;

  if (protocol)
    what = g_strdup_printf ("protocol error: %s", reason);
  else if (code < 0)
    what = g_strdup_printf ("the producer closed the connection (%s)", reason);
  else
    what = g_strdup_printf ("the producer said Bye: %s (code %d): %s",
        fh_code_name ((unsigned) code), code, reason);
  drop_connection (self, protocol ? FH_CODE_PROTOCOL : -1, reason);
  GST_OBJECT_LOCK (self);
  reconnect = self->reconnect;
  GST_OBJECT_UNLOCK (self);
  if (reconnect) {
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("Lost the framehub producer; reconnecting."), ("%s", what));
    /* A consumer closed for breaking the rules waits before it returns
     * (the SDK does the same). */
    self->retry_ns = (code == FH_CODE_PROTOCOL || code == FH_CODE_BAD_RELEASE
        || code == FH_CODE_RATE_LIMIT || protocol) ? RETRY_MAX_NS : RETRY_MIN_NS;
    g_free (what);
    return GST_FLOW_OK;
  }
  if (!protocol && (code < 0 || code == FH_CODE_OK
          || code == FH_CODE_SHUTDOWN)) {
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("The framehub producer went away: end of stream."), ("%s", what));
    g_free (what);
    return GST_FLOW_EOS;
  }
  GST_ELEMENT_ERROR (self, RESOURCE, READ,
      ("The framehub producer ended the subscription."), ("%s", what));
  g_free (what);
  return GST_FLOW_ERROR;
}

/* ---------------------------------------------------------------------- */
/* Frames.                                                                 */

/* running_time maps a capture time on CLOCK_MONOTONIC to the pipeline's
 * running time: directly when the pipeline clock is the monotonic system
 * clock (GStreamer's default), else through the two clocks' offset now. */
static GstClockTime
running_time (GstFramehubSrc * self, gint64 mono_ns)
{
  GstClock *clock = gst_element_get_clock (GST_ELEMENT_CAST (self));
  GstClockTime base;
  gint64 t;

  if (clock == NULL || mono_ns <= 0) {
    if (clock)
      gst_object_unref (clock);
    return GST_CLOCK_TIME_NONE;
  }
  if (clock != self->clock) {
    GstClockType type = GST_CLOCK_TYPE_REALTIME;
    gst_object_replace ((GstObject **) & self->clock, GST_OBJECT_CAST (clock));
    if (GST_IS_SYSTEM_CLOCK (clock))
      g_object_get (clock, "clock-type", &type, NULL);
    self->clock_mono = type == GST_CLOCK_TYPE_MONOTONIC;
  }
  base = gst_element_get_base_time (GST_ELEMENT_CAST (self));
  t = mono_ns;
  if (!self->clock_mono)
    t += (gint64) gst_clock_get_time (clock) - fh_mono_now ();
  gst_object_unref (clock);
  return t > (gint64) base ? (GstClockTime) t - base : 0;
}

static GstAllocator *
allocator_for (GstFramehubSrc * self, FhSurface * s)
{
  return s->kind == FH_KIND_DMABUF ? self->dmabuf_alloc : self->fd_alloc;
}

/* raw_memories wraps the planes of a raw frame, merging planes that follow
 * each other in one fd into one memory, and describes where each plane
 * lies in the buffer. FALSE with a reason when a plane lies outside its
 * fd. */
static gboolean
raw_memories (GstFramehubSrc * self, GstBuffer * buf, FhLease * l,
    const FhPlane * pl, int n, gsize * boff, gint * bstride, GString * why)
{
  FhSurface *s = l->surf;
  gsize at = 0, start = 0, end = 0;
  int fd = -1;

  for (int i = 0; i <= n; i++) {
    if (i < n) {
      if (pl[i].fd >= s->nfds || (gsize) pl[i].offset + pl[i].size >
          s->map_len[pl[i].fd] || pl[i].size == 0) {
        g_string_printf (why, "plane %d (fd %u, bytes %u..%u) lies outside "
            "surface %u (%d fds, %" G_GSIZE_FORMAT " bytes)", i, pl[i].fd,
            pl[i].offset, pl[i].offset + pl[i].size, s->id, s->nfds,
            s->map_len[MIN (pl[i].fd, s->nfds - 1)]);
        return FALSE;
      }
      if (fd == pl[i].fd && pl[i].offset == end) {
        boff[i] = at + (end - start);
        bstride[i] = (gint) pl[i].stride;
        end += pl[i].size;
        continue;
      }
    }
    if (fd >= 0) {
      GstMemory *m = fh_memory_new (allocator_for (self, s), l, fd, start,
          end - start);
      gst_buffer_append_memory (buf, m);
      at += end - start;
    }
    if (i < n) {
      fd = pl[i].fd;
      start = pl[i].offset;
      end = start + pl[i].size;
      boff[i] = at;
      bstride[i] = (gint) pl[i].stride;
    }
  }
  return TRUE;
}

/* copy_frame copies a raw frame into GStreamer's default layout, for
 * downstream that reads neither GstVideoMeta nor the producer's layout. */
static GstBuffer *
copy_frame (GstFramehubSrc * self, GstBuffer * in)
{
  GstVideoFrame sf, df;
  GstBuffer *out = gst_buffer_new_allocate (NULL,
      GST_VIDEO_INFO_SIZE (&self->vinfo), NULL);

  if (!gst_video_frame_map (&sf, &self->vinfo, in, GST_MAP_READ)) {
    gst_buffer_unref (out);
    return NULL;
  }
  if (!gst_video_frame_map (&df, &self->vinfo, out, GST_MAP_WRITE)) {
    gst_video_frame_unmap (&sf);
    gst_buffer_unref (out);
    return NULL;
  }
  gst_video_frame_copy (&df, &sf);
  gst_video_frame_unmap (&df);
  gst_video_frame_unmap (&sf);
  return out;
}

/* frame_buffer turns a Frame into *out (NULL when the frame is passed over
 * waiting for a keyframe). */
static GstFlowReturn
frame_buffer (GstFramehubSrc * self, const FhFrame * f, GstBuffer ** out)
{
  FhSurface *s = g_hash_table_lookup (self->surfaces,
      GUINT_TO_POINTER (f->surface));
  GString *why;
  FhLease *l;
  GstBuffer *buf;
  GstClockTime pts;

  *out = NULL;
  if (s == NULL || s->gen != f->gen) {
    gchar *r = g_strdup_printf ("frame %" G_GUINT64_FORMAT " names surface %u "
        "gen %u, which was not announced", f->seq, f->surface, f->gen);
    GstFlowReturn ret = lost (self, -1, r, TRUE);
    g_free (r);
    return ret;
  }
  /* From here the lease ends when l's last reference goes. */
  l = fh_lease_new (self->conn, s, f->lease, self->ctr);
  self->dropped += f->dropped;
  if (f->dropped || (f->flags & FH_FLAG_DISCONT))
    self->discont = TRUE;
  if (self->encoded && self->wait_keyframe) {
    /* A decoder starts at a keyframe, at the start and after every gap
     * (PROTOCOL.md §7, "Encoded streams"). */
    if (self->discont && !self->waiting_key) {
      self->waiting_key = TRUE;
      self->key_requested = FALSE;
    }
    if (self->waiting_key && !(f->flags & FH_FLAG_KEYFRAME)) {
      fh_lease_unref (l);
      self->skipped_key++;
      if (!self->key_requested) {
        uint8_t b[8];
        size_t n = fh_encode_request_keyframe (b, sizeof b);
        (void) fh_conn_send (self->conn, b, n);
        self->key_requested = TRUE;
      }
      return GST_FLOW_OK;
    }
    self->waiting_key = FALSE;
  }
  if (self->caps_changed && !gst_base_src_negotiate (GST_BASE_SRC (self))) {
    fh_lease_unref (l);
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
        ("Downstream does not accept the framehub stream's caps."),
        ("%s %ux%u", self->caps.format, self->caps.width, self->caps.height));
    return GST_FLOW_NOT_NEGOTIATED;
  }

  buf = gst_buffer_new ();
  why = g_string_new (NULL);
  if (self->encoded) {
    if (f->size == 0 || (gsize) f->offset + f->size > s->map_len[0]) {
      g_string_printf (why, "frame %" G_GUINT64_FORMAT " (bytes %u..%u) lies "
          "outside surface %u (%" G_GSIZE_FORMAT " bytes)", f->seq, f->offset,
          f->offset + f->size, s->id, s->map_len[0]);
      goto bad;
    }
    gst_buffer_append_memory (buf, fh_memory_new (allocator_for (self, s), l,
            0, f->offset, f->size));
    if (!(f->flags & FH_FLAG_KEYFRAME))
      GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DELTA_UNIT);
  } else {
    const FhPlane *pl = f->n_planes ? f->planes : self->caps.planes;
    int n = f->n_planes ? f->n_planes : self->caps.n_planes;
    gsize boff[GST_VIDEO_MAX_PLANES] = { 0 };
    gint bstride[GST_VIDEO_MAX_PLANES] = { 0 };
    gboolean standard = TRUE;

    if ((guint) n != GST_VIDEO_INFO_N_PLANES (&self->vinfo)) {
      g_string_printf (why, "frame %" G_GUINT64_FORMAT " has %d planes, its "
          "format %d", f->seq, n, GST_VIDEO_INFO_N_PLANES (&self->vinfo));
      goto bad;
    }
    if (!raw_memories (self, buf, l, pl, n, boff, bstride, why))
      goto bad;
    gst_buffer_add_video_meta_full (buf, GST_VIDEO_FRAME_FLAG_NONE,
        GST_VIDEO_INFO_FORMAT (&self->vinfo),
        GST_VIDEO_INFO_WIDTH (&self->vinfo),
        GST_VIDEO_INFO_HEIGHT (&self->vinfo), (guint) n, boff, bstride);
    for (int i = 0; i < n; i++)
      standard = standard && boff[i] == GST_VIDEO_INFO_PLANE_OFFSET (&self->vinfo, i)
          && bstride[i] == GST_VIDEO_INFO_PLANE_STRIDE (&self->vinfo, i);
    if (!standard && !self->downstream_meta) {
      /* Readers downstream would take the planes where GStreamer's default
       * layout puts them: give them that layout, once per frame. */
      GstBuffer *copy = copy_frame (self, buf);
      gst_buffer_unref (buf);
      if (copy == NULL) {
        g_string_printf (why, "could not map frame %" G_GUINT64_FORMAT
            " to copy it", f->seq);
        buf = gst_buffer_new ();
        goto bad;
      }
      buf = copy;
      self->copies++;
      if (!self->copy_warned) {
        self->copy_warned = TRUE;
        GST_ELEMENT_WARNING (self, STREAM, FORMAT,
            ("Copying every frame: downstream accepts no GstVideoMeta and the "
                "producer's plane layout is not GStreamer's default."),
            ("put an element that reads GstVideoMeta (videoconvert, an "
                "encoder) right after framehubsrc to share the frames "
                "without a copy"));
      }
    }
  }
  g_string_free (why, TRUE);
  fh_lease_unref (l);           /* the memories hold it now */

  pts = running_time (self, f->mono_ns);
  GST_BUFFER_PTS (buf) = pts;
  if (self->encoded && GST_CLOCK_TIME_IS_VALID (pts) && f->pts >= 0
      && f->dts >= 0 && f->dts <= f->pts)
    GST_BUFFER_DTS (buf) = pts > (GstClockTime) (f->pts - f->dts) ?
        pts - (GstClockTime) (f->pts - f->dts) : 0;
  if (f->dur >= 0)
    GST_BUFFER_DURATION (buf) = (GstClockTime) f->dur;
  else if (self->caps.fps_n && self->caps.fps_d)
    GST_BUFFER_DURATION (buf) = gst_util_uint64_scale (GST_SECOND,
        self->caps.fps_d, self->caps.fps_n);
  /* The stream's sequence number: the stamp of a stamped stream carries
   * it too (PROTOCOL.md §9). */
  GST_BUFFER_OFFSET (buf) = f->seq;
  GST_BUFFER_OFFSET_END (buf) = f->seq + 1;
  GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_LIVE);
  if (self->discont) {
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
    self->discont = FALSE;
    self->disconts++;
  }
  self->frames++;
  *out = buf;
  return GST_FLOW_OK;

bad:
  gst_buffer_unref (buf);
  fh_lease_unref (l);
  {
    gchar *r = g_string_free (why, FALSE);
    GstFlowReturn ret = lost (self, -1, r, TRUE);
    g_free (r);
    return ret;
  }
}

/* announce stores the surfaces of an Announce (and takes its fds). */
static GstFlowReturn
announce (GstFramehubSrc * self, const FhAnnounce * a, const int *fds,
    int nfds)
{
  char err[256];
  int at = 0;

  if (nfds != a->n_fds) {
    gchar *r = g_strdup_printf ("Announce lists %d fds but carried %d",
        a->n_fds, nfds);
    GstFlowReturn ret;
    close_fds (fds, nfds);
    ret = lost (self, -1, r, TRUE);
    g_free (r);
    return ret;
  }
  for (int i = 0; i < a->n_surfaces; i++) {
    const FhSurfaceDesc *d = &a->surfaces[i];
    FhSurface *s;
    const gchar *refuse = NULL;

    if (d->kind == FH_KIND_CUDA)
      refuse = "a cuda surface (GPU memory): framehubsrc takes CPU memory only";
    else if (d->no_cpu_map)
      refuse = "GPU memory the CPU cannot map (no_cpu_map)";
    if (refuse) {
      gchar *r = g_strdup_printf ("surface %u is %s", d->id, refuse);
      GstFlowReturn ret;
      close_fds (fds + at, nfds - at);
      drop_connection (self, FH_CODE_OK, "consumer closing: unsupported memory");
      GST_ELEMENT_ERROR (self, RESOURCE, READ,
          ("The framehub stream's memory cannot be read by the CPU."), ("%s",
              r));
      g_free (r);
      ret = GST_FLOW_ERROR;
      return ret;
    }
    s = fh_surface_new (d, fds + at, err, sizeof err);
    at += d->nfds;
    if (s == NULL) {
      GstFlowReturn ret;
      close_fds (fds + at, nfds - at);
      ret = lost (self, -1, err, TRUE);
      return ret;
    }
    /* A re-Announce replaces the surface; frames held on the old one keep
     * it (and its fds) alive through their leases. */
    g_hash_table_replace (self->surfaces, GUINT_TO_POINTER (d->id), s);
  }
  return GST_FLOW_OK;
}

/* receive reads and handles one packet; *out is set when it was a frame
 * to push. */
static GstFlowReturn
receive (GstFramehubSrc * self, GstBuffer ** out, gboolean * reset_seen)
{
  int fds[FH_MAX_FDS], nfds = 0;
  char err[1024];
  ssize_t n;
  FhMsg *m = self->msg;

  *out = NULL;
  n = fh_conn_recv (self->conn, self->rbuf, FH_MAX_PACKET, fds, &nfds);
  if (n == -EAGAIN)
    return GST_FLOW_OK;
  if (n == -ECONNRESET && !*reset_seen) {
    /* The producer closed with our releases unread: the kernel reports
     * it once, ahead of the Bye that says why (PROTOCOL.md §2). */
    *reset_seen = TRUE;
    return GST_FLOW_OK;
  }
  if (n == 0)
    return lost (self, -1, "end of file without a Bye", FALSE);
  if (n < 0) {
    const gchar *e = n == -EMSGSIZE ? "a packet or its fds were truncated" :
        g_strerror ((int) -n);
    return lost (self, -1, e, n == -EMSGSIZE);
  }
  if (fh_decode (self->rbuf, (size_t) n, m, err, sizeof err) < 0) {
    close_fds (fds, nfds);
    return lost (self, -1, err, TRUE);
  }
  if (nfds > 0 && m->type != FH_MSG_ANNOUNCE && m->type != FH_MSG_RING) {
    gchar *r = g_strdup_printf ("%s message carried %d fds",
        fh_type_name (m->type), nfds);
    GstFlowReturn ret;
    close_fds (fds, nfds);
    if (m->type == FH_MSG_UNKNOWN) {
      g_free (r);
      return GST_FLOW_OK;
    }
    ret = lost (self, -1, r, TRUE);
    g_free (r);
    return ret;
  }
  switch (m->type) {
    case FH_MSG_FRAME:
      return frame_buffer (self, &m->u.frame, out);
    case FH_MSG_ANNOUNCE:
      return announce (self, &m->u.announce, fds, nfds);
    case FH_MSG_RING:
      if (nfds != 1 || !(self->welcome.flags & FH_HELLO_RELEASE_RING)) {
        close_fds (fds, nfds);
        return lost (self, -1, "a release ring that was not granted, or "
            "without its fd", TRUE);
      }
      if (fh_conn_map_ring (self->conn, fds[0], m->u.ring_size, err,
              sizeof err) < 0) {
        close (fds[0]);
        return lost (self, -1, err, TRUE);
      }
      close (fds[0]);           /* the mapping does not need it */
      return GST_FLOW_OK;
    case FH_MSG_FORGET:
      for (int i = 0; i < m->u.forget.n_ids; i++)
        g_hash_table_remove (self->surfaces,
            GUINT_TO_POINTER (m->u.forget.ids[i]));
      return GST_FLOW_OK;
    case FH_MSG_CAPS:{
      GString *why = g_string_new (NULL);
      if (!caps_from_producer (self, &m->u.caps, why)) {
        GstFlowReturn ret;
        drop_connection (self, FH_CODE_OK, "consumer closing: unsupported caps");
        GST_ELEMENT_ERROR (self, STREAM, FORMAT,
            ("The framehub stream changed to caps framehubsrc cannot carry."),
            ("%s", why->str));
        g_string_free (why, TRUE);
        ret = GST_FLOW_ERROR;
        return ret;
      }
      g_string_free (why, TRUE);
      self->caps_changed = TRUE;
      self->discont = TRUE;
      return GST_FLOW_OK;
    }
    case FH_MSG_EOS:
      /* The producer's pipeline stopped and restarts: a gap, no EOS. */
      GST_INFO_OBJECT (self, "producer reports end of stream: %s",
          m->u.reason.reason);
      self->discont = TRUE;
      return GST_FLOW_OK;
    case FH_MSG_PING:{
      uint8_t b[64];
      size_t k = fh_encode_pong (b, sizeof b, m->u.ping.token,
          m->u.ping.mono_ns);
      (void) fh_conn_send (self->conn, b, k);
      return GST_FLOW_OK;
    }
    case FH_MSG_BYE:
      return lost (self, m->u.reason.code, m->u.reason.reason, FALSE);
    case FH_MSG_PONG:
    case FH_MSG_UNKNOWN:
      return GST_FLOW_OK;
  }
  {
    gchar *r = g_strdup_printf ("unexpected %s message after the Welcome",
        fh_type_name (m->type));
    GstFlowReturn ret = lost (self, -1, r, TRUE);
    g_free (r);
    return ret;
  }
}

static GstFlowReturn
gst_framehub_src_create (GstPushSrc * psrc, GstBuffer ** outbuf)
{
  GstFramehubSrc *self = GST_FRAMEHUB_SRC (psrc);
  gboolean reset_seen = FALSE;

  for (;;) {
    GstFlowReturn ret;
    int w;

    if (self->conn == NULL) {
      ret = ensure_connected (self);
      if (ret != GST_FLOW_OK)
        return ret;
      reset_seen = FALSE;
    }
    /* Releases queued since the last wait go out now; while we wait,
     * releases go out at once (fh_conn_release). */
    fh_conn_wait_begin (self->conn);
    w = wait_fd (self, fh_conn_fd (self->conn), -1);
    fh_conn_wait_end (self->conn);
    if (w == WAIT_UNLOCKED)
      return GST_FLOW_FLUSHING;
    ret = receive (self, outbuf, &reset_seen);
    if (ret != GST_FLOW_OK || *outbuf != NULL)
      return ret;
  }
}

/* ---------------------------------------------------------------------- */
/* Base class hooks.                                                       */

static gboolean
gst_framehub_src_start (GstBaseSrc * bsrc)
{
  GstFramehubSrc *self = GST_FRAMEHUB_SRC (bsrc);
  GString *why = g_string_new (NULL);
  ConnResult r;
  gboolean reconnect;

  self->frames = self->dropped = self->disconts = self->copies = 0;
  self->reconnects = self->skipped_key = 0;
  self->connected_once = FALSE;
  self->copy_warned = FALSE;
  self->retry_ns = RETRY_MIN_NS;
  self->have_caps = FALSE;
  self->downstream_meta = FALSE;
  /* Connect now, so that a missing producer or a refusal fails the state
   * change with its reason, and the caps are known before negotiation. */
  r = connect_once (self, why);
  GST_OBJECT_LOCK (self);
  reconnect = self->reconnect;
  GST_OBJECT_UNLOCK (self);
  if (r == CONN_OK) {
    self->connected_once = TRUE;
    self->discont = TRUE;
    self->waiting_key = self->encoded && self->wait_keyframe;
    self->key_requested = FALSE;
  } else if (r == CONN_FATAL || !reconnect) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Could not subscribe to the framehub producer."), ("%s", why->str));
    g_string_free (why, TRUE);
    return FALSE;
  } else {
    GST_INFO_OBJECT (self, "no producer yet, create retries: %s", why->str);
  }
  g_string_free (why, TRUE);
  return TRUE;
}

static gboolean
gst_framehub_src_stop (GstBaseSrc * bsrc)
{
  GstFramehubSrc *self = GST_FRAMEHUB_SRC (bsrc);

  drop_connection (self, FH_CODE_OK, "consumer closing");
  gst_object_replace ((GstObject **) & self->clock, NULL);
  GST_OBJECT_LOCK (self);
  self->have_caps = FALSE;
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

static gboolean
gst_framehub_src_unlock (GstBaseSrc * bsrc)
{
  GstFramehubSrc *self = GST_FRAMEHUB_SRC (bsrc);
  uint64_t one = 1;
  if (write (self->wakefd, &one, sizeof one) < 0)
    GST_WARNING_OBJECT (self, "wake the streaming thread: %s",
        g_strerror (errno));
  return TRUE;
}

static gboolean
gst_framehub_src_unlock_stop (GstBaseSrc * bsrc)
{
  GstFramehubSrc *self = GST_FRAMEHUB_SRC (bsrc);
  uint64_t v;
  /* Non-blocking: empty or not, this returns. */
  if (read (self->wakefd, &v, sizeof v) < 0 && errno != EAGAIN)
    GST_WARNING_OBJECT (self, "drain the wake-up fd: %s", g_strerror (errno));
  return TRUE;
}

static gboolean
gst_framehub_src_query (GstBaseSrc * bsrc, GstQuery * query)
{
  GstFramehubSrc *self = GST_FRAMEHUB_SRC (bsrc);

  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    GstClockTime min = 0;
    GST_OBJECT_LOCK (self);
    /* A frame's timestamp is its capture time; it arrives after the
     * producer's pipeline made it, within about one frame. */
    if (self->have_caps && self->caps.fps_n && self->caps.fps_d)
      min = gst_util_uint64_scale (GST_SECOND, self->caps.fps_d,
          self->caps.fps_n);
    GST_OBJECT_UNLOCK (self);
    gst_query_set_latency (query, TRUE, min, GST_CLOCK_TIME_NONE);
    return TRUE;
  }
  return GST_BASE_SRC_CLASS (parent_class)->query (bsrc, query);
}

static gboolean
gst_framehub_src_event (GstBaseSrc * bsrc, GstEvent * event)
{
  GstFramehubSrc *self = GST_FRAMEHUB_SRC (bsrc);

  if (gst_video_event_is_force_key_unit (event)) {
    /* A muxer, a new RTSP client...: ask the producer's encoder. */
    FhConn *c = NULL;
    GST_OBJECT_LOCK (self);
    if (self->conn && self->encoded)
      c = fh_conn_ref (self->conn);
    GST_OBJECT_UNLOCK (self);
    if (c) {
      uint8_t b[8];
      size_t n = fh_encode_request_keyframe (b, sizeof b);
      (void) fh_conn_send (c, b, n);
      fh_conn_unref (c);
    }
    return TRUE;
  }
  return GST_BASE_SRC_CLASS (parent_class)->event (bsrc, event);
}

/* ---------------------------------------------------------------------- */
/* Properties and life cycle.                                              */

static GstStructure *
stats (GstFramehubSrc * self)
{
  FhCounters *c = self->ctr;
  return gst_structure_new ("framehubsrc-stats",
      "frames", G_TYPE_UINT64, self->frames,
      "dropped", G_TYPE_UINT64, self->dropped,
      "discont", G_TYPE_UINT64, self->disconts,
      "copies", G_TYPE_UINT64, self->copies,
      "reconnects", G_TYPE_UINT64, self->reconnects,
      "waited-for-keyframe", G_TYPE_UINT64, self->skipped_key,
      "leases-held", G_TYPE_INT64, __atomic_load_n (&c->held, __ATOMIC_RELAXED),
      "released", G_TYPE_UINT64,
      __atomic_load_n (&c->released, __ATOMIC_RELAXED),
      "ring-releases", G_TYPE_UINT64,
      __atomic_load_n (&c->ring_writes, __ATOMIC_RELAXED),
      "release-messages", G_TYPE_UINT64,
      __atomic_load_n (&c->release_msgs, __ATOMIC_RELAXED),
      "session", G_TYPE_UINT64, self->welcome.session,
      "max-in-flight", G_TYPE_UINT, self->welcome.max_in_flight,
      "max-hold", G_TYPE_UINT, self->welcome.max_hold_ms, NULL);
}

static void
gst_framehub_src_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstFramehubSrc *self = GST_FRAMEHUB_SRC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_SOCKET:
      g_free (self->socket);
      self->socket = g_value_dup_string (value);
      break;
    case PROP_STREAM:
      g_free (self->stream);
      self->stream = g_value_dup_string (value);
      if (self->stream == NULL)
        self->stream = g_strdup (DEFAULT_STREAM);
      break;
    case PROP_CONSUMER_NAME:
      g_free (self->consumer_name);
      self->consumer_name = g_value_dup_string (value);
      break;
    case PROP_MAX_IN_FLIGHT:
      self->max_in_flight = g_value_get_uint (value);
      break;
    case PROP_MAX_HOLD:
      self->max_hold_ms = g_value_get_uint (value);
      break;
    case PROP_POLICY:
      self->policy = g_value_get_enum (value);
      break;
    case PROP_RECONNECT:
      self->reconnect = g_value_get_boolean (value);
      break;
    case PROP_WAIT_FOR_KEYFRAME:
      self->wait_keyframe = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_framehub_src_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstFramehubSrc *self = GST_FRAMEHUB_SRC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_SOCKET:
      g_value_set_string (value, self->socket);
      break;
    case PROP_STREAM:
      g_value_set_string (value, self->stream);
      break;
    case PROP_CONSUMER_NAME:
      g_value_set_string (value, self->consumer_name);
      break;
    case PROP_MAX_IN_FLIGHT:
      g_value_set_uint (value, self->max_in_flight);
      break;
    case PROP_MAX_HOLD:
      g_value_set_uint (value, self->max_hold_ms);
      break;
    case PROP_POLICY:
      g_value_set_enum (value, self->policy);
      break;
    case PROP_RECONNECT:
      g_value_set_boolean (value, self->reconnect);
      break;
    case PROP_WAIT_FOR_KEYFRAME:
      g_value_set_boolean (value, self->wait_keyframe);
      break;
    case PROP_STATS:
      g_value_take_boxed (value, stats (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_framehub_src_init (GstFramehubSrc * self)
{
  gst_base_src_set_live (GST_BASE_SRC (self), TRUE);
  gst_base_src_set_format (GST_BASE_SRC (self), GST_FORMAT_TIME);
  self->stream = g_strdup (DEFAULT_STREAM);
  self->max_in_flight = DEFAULT_MAX_IN_FLIGHT;
  self->max_hold_ms = DEFAULT_MAX_HOLD;
  self->policy = DEFAULT_POLICY;
  self->reconnect = DEFAULT_RECONNECT;
  self->wait_keyframe = DEFAULT_WAIT_FOR_KEYFRAME;
  self->surfaces = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
      (GDestroyNotify) fh_surface_unref);
  self->msg = g_new0 (FhMsg, 1);
  self->rbuf = g_malloc (FH_MAX_PACKET);
  self->wakefd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  self->ctr = fh_counters_new ();
  self->fd_alloc = fh_allocator_new (FALSE);
  self->dmabuf_alloc = fh_allocator_new (TRUE);
}

static void
gst_framehub_src_finalize (GObject * object)
{
  GstFramehubSrc *self = GST_FRAMEHUB_SRC (object);

  drop_connection (self, -1, NULL);
  g_hash_table_destroy (self->surfaces);
  g_free (self->msg);
  g_free (self->rbuf);
  if (self->wakefd >= 0)
    close (self->wakefd);
  fh_counters_unref (self->ctr);
  gst_object_unref (self->fd_alloc);
  gst_object_unref (self->dmabuf_alloc);
  gst_object_replace ((GstObject **) & self->clock, NULL);
  g_free (self->socket);
  g_free (self->stream);
  g_free (self->consumer_name);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_framehub_src_class_init (GstFramehubSrcClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSrcClass *basesrc_class = GST_BASE_SRC_CLASS (klass);
  GstPushSrcClass *pushsrc_class = GST_PUSH_SRC_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_READY;

  GST_DEBUG_CATEGORY_INIT (gst_framehub_src_debug, "framehubsrc", 0,
      "framehub consumer source");

  gobject_class->set_property = gst_framehub_src_set_property;
  gobject_class->get_property = gst_framehub_src_get_property;
  gobject_class->finalize = gst_framehub_src_finalize;

  g_object_class_install_property (gobject_class, PROP_SOCKET,
      g_param_spec_string ("socket", "Socket",
          "The producer's socket: a path, or @name for the abstract "
          "namespace. Unset: $FRAMEHUB_SOCKET, else "
          "/run/framehub/framehub.sock for root, else "
          "$XDG_RUNTIME_DIR/framehub/framehub.sock. The process listening "
          "there must run as root or this process's uid, or as a uid of "
          "$FRAMEHUB_PRODUCER_UID (uids or user names, comma-separated)",
          NULL, rw));
  g_object_class_install_property (gobject_class, PROP_STREAM,
      g_param_spec_string ("stream", "Stream",
          "The stream to subscribe to: \"raw\" (NV12 frames, video/x-raw) or "
          "\"h264\" (access units, video/x-h264 byte-stream), or any stream "
          "the producer serves; its caps come from the producer",
          DEFAULT_STREAM, rw));
  g_object_class_install_property (gobject_class, PROP_CONSUMER_NAME,
      g_param_spec_string ("consumer-name", "Consumer name",
          "The name the producer shows for this consumer in its logs and "
          "metrics (at most 64 bytes of printable UTF-8). Unset: the "
          "element's name (name=...)", NULL, rw));
  g_object_class_install_property (gobject_class, PROP_MAX_IN_FLIGHT,
      g_param_spec_uint ("max-in-flight", "Max in flight",
          "The budget asked for: how many buffers of this element may be "
          "alive at once, anywhere downstream (queues, tees, sinks). A frame "
          "published while all are alive is skipped for this consumer. 0: "
          "the producer's default (4); the producer may grant less, "
          "\"stats\" says what it granted", 0, G_MAXUINT32,
          DEFAULT_MAX_IN_FLIGHT, rw));
  g_object_class_install_property (gobject_class, PROP_MAX_HOLD,
      g_param_spec_uint ("max-hold", "Max hold",
          "The longest time, in milliseconds, that any buffer of this element "
          "may stay alive downstream; past it the producer evicts this "
          "consumer (an error, or a reconnection with reconnect=true). A "
          "sink's last-sample counts while the pipeline is paused. 0: the "
          "producer's default (2000)", 0, G_MAXUINT32, DEFAULT_MAX_HOLD, rw));
  g_object_class_install_property (gobject_class, PROP_POLICY,
      g_param_spec_enum ("policy", "Policy",
          "What the producer does with a frame published while this consumer "
          "holds its whole budget", gst_framehub_src_policy_get_type (),
          DEFAULT_POLICY, rw));
  g_object_class_install_property (gobject_class, PROP_RECONNECT,
      g_param_spec_boolean ("reconnect", "Reconnect",
          "When the producer goes away (it stopped, crashed or restarted) or "
          "evicts this consumer: true reconnects, with a back-off from 100 ms "
          "to 5 s, and marks the next buffer DISCONT; false ends the stream "
          "(EOS) when the producer went away and posts an error when it "
          "evicted this consumer. With true a missing producer at start is "
          "waited for too", DEFAULT_RECONNECT, rw));
  g_object_class_install_property (gobject_class, PROP_WAIT_FOR_KEYFRAME,
      g_param_spec_boolean ("wait-for-keyframe", "Wait for keyframe",
          "Encoded streams: pass over access units (releasing them at once) "
          "until a keyframe, at the start and after every gap, and ask the "
          "producer for a keyframe when the wait starts, so that a decoder "
          "downstream starts cleanly", DEFAULT_WAIT_FOR_KEYFRAME, rw));
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "Counters since the element started: frames (buffers pushed), "
          "dropped (frames the producer skipped for this consumer), discont, "
          "copies (frames copied because downstream reads neither GstVideoMeta "
          "nor the producer's layout), reconnects, waited-for-keyframe, "
          "leases-held (buffers alive now), released, ring-releases, "
          "release-messages, and the session, max-in-flight and max-hold "
          "the producer granted", GST_TYPE_STRUCTURE,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_set_static_metadata (element_class,
      "framehub source", "Source/Video",
      "Receives the frames of a framehub producer's stream without copying "
      "them: raw buffers wrap the producer's memfd or DMA-BUF surfaces, and "
      "each frame's lease ends when its last buffer is freed",
      "framehub");
  gst_element_class_add_static_pad_template (element_class, &src_template);

  basesrc_class->start = GST_DEBUG_FUNCPTR (gst_framehub_src_start);
  basesrc_class->stop = GST_DEBUG_FUNCPTR (gst_framehub_src_stop);
  basesrc_class->get_caps = GST_DEBUG_FUNCPTR (gst_framehub_src_get_caps);
  basesrc_class->negotiate = GST_DEBUG_FUNCPTR (gst_framehub_src_negotiate);
  basesrc_class->decide_allocation =
      GST_DEBUG_FUNCPTR (gst_framehub_src_decide_allocation);
  basesrc_class->unlock = GST_DEBUG_FUNCPTR (gst_framehub_src_unlock);
  basesrc_class->unlock_stop = GST_DEBUG_FUNCPTR (gst_framehub_src_unlock_stop);
  basesrc_class->query = GST_DEBUG_FUNCPTR (gst_framehub_src_query);
  basesrc_class->event = GST_DEBUG_FUNCPTR (gst_framehub_src_event);
  pushsrc_class->create = GST_DEBUG_FUNCPTR (gst_framehub_src_create);

  gst_type_mark_as_plugin_api (gst_framehub_src_policy_get_type (), 0);
}
