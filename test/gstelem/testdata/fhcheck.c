/* fhcheck: a GStreamer tracer for framehub's element tests (test/gstelem),
 * built by the tests into a plugin of its own. Loaded into a real
 * gst-launch-1.0 with GST_TRACERS="fhcheck(file=PATH)", it watches every
 * buffer pushed into a sink element and writes one JSON line per buffer to
 * PATH:
 *
 *   {"sink":"fakesink0","seq":42,"discont":false,"caps":"video/x-raw",
 *    "mems":[{"fd":true,"dmabuf":false,"ino":123,"map_ino":123}],
 *    "stamp":"ok","held":3,"ts":...,"pts":...,"rt":...}
 *
 * - pts: the buffer's PTS, rt: the pipeline's running time as the sink gets
 *   it (clock time − base time), both in ns, -1 when unknown: a live
 *   source's PTS is its capture time in running time, so rt − pts is how
 *   long ago the frame was captured.
 * - mems: each GstMemory of the buffer: whether it is fd memory, the inode
 *   of its fd, and the inode of the mapping its bytes are read from (the
 *   memory is mapped for reading and the address looked up in
 *   /proc/self/maps): equal inodes mean the bytes a reader sees are the
 *   producer's memfd pages, not a copy.
 * - stamp: the framehub test stamp of the frame's Y plane (PROTOCOL.md §9),
 *   verified against the buffer's offset (framehubsrc puts the stream's
 *   sequence number there): "ok", "none", "checksum" or "seq"; "" for
 *   caps that are not raw NV12.
 * - held: framehubsrc's "leases-held" stat when the pipeline has one, -1
 *   otherwise.
 *
 * Before an element with a "stats" property (framehubsrc, framehubsink)
 * goes from PAUSED to READY it writes {"stats":"NAME", ...the structure's
 * fields}.
 *
 * It is test support only: nothing of it ships. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gst/gst.h>
#include <gst/allocators/allocators.h>
#include <gst/video/video.h>

typedef struct {
  GstTracer parent;
  FILE *out;
  GMutex lock;
  guint32 crc[256];
} FhCheck;

typedef struct {
  GstTracerClass parent_class;
} FhCheckClass;

G_DEFINE_TYPE (FhCheck, fh_check, GST_TYPE_TRACER);

/* ino_of_mapping returns the inode of the mapping that holds addr, from
 * /proc/self/maps, or 0. */
static guint64
ino_of_mapping (const void *addr)
{
  FILE *f = fopen ("/proc/self/maps", "r");
  char line[1024];
  guint64 ino = 0;
  uintptr_t a = (uintptr_t) addr;

  if (f == NULL)
    return 0;
  while (fgets (line, sizeof line, f)) {
    uintptr_t lo, hi;
    unsigned long long in;
    if (sscanf (line, "%" SCNxPTR "-%" SCNxPTR " %*s %*s %*s %llu", &lo, &hi,
            &in) == 3 && a >= lo && a < hi) {
      ino = in;
      break;
    }
  }
  fclose (f);
  return ino;
}

static guint32
crc32c (FhCheck * self, guint32 crc, const guint8 * p, gsize n)
{
  for (gsize i = 0; i < n; i++)
    crc = self->crc[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

static guint64
le (const guint8 * p, int n)
{
  guint64 v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

/* verify_stamp checks PROTOCOL.md §9's stamp in plane y (stride, width). */
static const char *
verify_stamp (FhCheck * self, const guint8 * y, gsize len, gint stride,
    gint width, guint64 want_seq)
{
  guint rw = MIN (width, 256);
  guint32 crc = 0xffffffff;

  if (width < 64 || stride < width || len < (gsize) stride * 7 + rw)
    return "none";
  if (memcmp (y, "FHST", 4) != 0 || le (y + 4, 2) != 1 || le (y + 6, 2) != rw
      || le (y + 8, 2) != 8)
    return "none";
  crc = crc32c (self, crc, y, 28);
  crc = crc32c (self, crc, y + 32, rw - 32);
  for (int r = 1; r < 8; r++)
    crc = crc32c (self, crc, y + (gsize) r * stride, rw);
  if ((crc ^ 0xffffffff) != le (y + 28, 4))
    return "checksum";
  if (le (y + 12, 8) != want_seq)
    return "seq";
  return "ok";
}

/* held returns framehubsrc's leases-held in the pipeline of element, or
 * -1. */
static gint64
held (GstElement * element)
{
  GstObject *top = gst_object_ref (GST_OBJECT (element)), *p;
  GstIterator *it;
  GValue v = G_VALUE_INIT;
  gint64 n = -1;

  while ((p = gst_object_get_parent (top))) {
    gst_object_unref (top);
    top = p;
  }
  if (GST_IS_BIN (top)) {
    it = gst_bin_iterate_recurse (GST_BIN (top));
    while (n < 0 && gst_iterator_next (it, &v) == GST_ITERATOR_OK) {
      GstElement *e = g_value_get_object (&v);
      GstElementFactory *f = gst_element_get_factory (e);
      if (f && strcmp (GST_OBJECT_NAME (f), "framehubsrc") == 0) {
        GstStructure *s = NULL;
        g_object_get (e, "stats", &s, NULL);
        if (s) {
          gst_structure_get_int64 (s, "leases-held", &n);
          gst_structure_free (s);
        }
      }
      g_value_reset (&v);
    }
    g_value_unset (&v);
    gst_iterator_free (it);
  }
  gst_object_unref (top);
  return n;
}

static void
on_push (FhCheck * self, guint64 ts, GstPad * pad, GstBuffer * buf)
{
  GstPad *peer = gst_pad_get_peer (pad);
  GstElement *sink = peer ? gst_pad_get_parent_element (peer) : NULL;
  GstCaps *caps = NULL;
  GString *line;
  const char *stamp = "";
  const gchar *media = "";
  GstVideoInfo vi;
  gboolean raw = FALSE;

  if (sink == NULL || !GST_OBJECT_FLAG_IS_SET (sink, GST_ELEMENT_FLAG_SINK)
      || GST_IS_BIN (sink))
    goto out;
  caps = gst_pad_get_current_caps (pad);
  if (caps && gst_caps_get_size (caps) > 0) {
    media = gst_structure_get_name (gst_caps_get_structure (caps, 0));
    raw = gst_video_info_from_caps (&vi, caps)
        && GST_VIDEO_INFO_FORMAT (&vi) == GST_VIDEO_FORMAT_NV12;
  }
  line = g_string_new (NULL);
  g_string_append_printf (line, "{\"sink\":\"%s\",\"ts\":%" G_GUINT64_FORMAT
      ",\"seq\":%" G_GUINT64_FORMAT ",\"discont\":%s,\"caps\":\"%s\",\"mems\":[",
      GST_OBJECT_NAME (sink), ts, GST_BUFFER_OFFSET (buf),
      GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DISCONT) ? "true" : "false",
      media);
  for (guint i = 0; i < gst_buffer_n_memory (buf); i++) {
    GstMemory *m = gst_buffer_peek_memory (buf, i);
    gboolean fd = gst_is_fd_memory (m);
    guint64 ino = 0, map_ino = 0;
    GstMapInfo info;
    struct stat st;

    if (fd && fstat (gst_fd_memory_get_fd (m), &st) == 0)
      ino = st.st_ino;
    if (gst_memory_map (m, &info, GST_MAP_READ)) {
      map_ino = ino_of_mapping (info.data);
      gst_memory_unmap (m, &info);
    }
    g_string_append_printf (line, "%s{\"fd\":%s,\"dmabuf\":%s,\"ino\":%"
        G_GUINT64_FORMAT ",\"map_ino\":%" G_GUINT64_FORMAT "}", i ? "," : "",
        fd ? "true" : "false", gst_is_dmabuf_memory (m) ? "true" : "false",
        ino, map_ino);
  }
  g_string_append (line, "]");
  if (raw) {
    GstVideoMeta *meta = gst_buffer_get_video_meta (buf);
    gsize off = meta ? meta->offset[0] : GST_VIDEO_INFO_PLANE_OFFSET (&vi, 0);
    gint stride = meta ? meta->stride[0] : GST_VIDEO_INFO_PLANE_STRIDE (&vi, 0);
    guint idx, n;
    gsize skip;
    GstMapInfo info;

    stamp = "none";
    if (gst_buffer_find_memory (buf, off, 1, &idx, &n, &skip)) {
      GstMemory *m = gst_buffer_peek_memory (buf, idx);
      if (gst_memory_map (m, &info, GST_MAP_READ)) {
        stamp = verify_stamp (self, info.data + skip, info.size - skip, stride,
            GST_VIDEO_INFO_WIDTH (&vi), GST_BUFFER_OFFSET (buf));
        gst_memory_unmap (m, &info);
      }
    }
  }
  {
    GstClock *clock = gst_element_get_clock (sink);
    gint64 rt = -1;
    if (clock) {
      rt = (gint64) (gst_clock_get_time (clock) -
          gst_element_get_base_time (sink));
      gst_object_unref (clock);
    }
    g_string_append_printf (line, ",\"stamp\":\"%s\",\"held\":%"
        G_GINT64_FORMAT ",\"pts\":%" G_GINT64_FORMAT ",\"rt\":%"
        G_GINT64_FORMAT "}\n", stamp, held (sink),
        GST_BUFFER_PTS_IS_VALID (buf) ? (gint64) GST_BUFFER_PTS (buf) : -1, rt);
  }
  g_mutex_lock (&self->lock);
  fputs (line->str, self->out);
  fflush (self->out);
  g_mutex_unlock (&self->lock);
  g_string_free (line, TRUE);
out:
  if (caps)
    gst_caps_unref (caps);
  if (sink)
    gst_object_unref (sink);
  if (peer)
    gst_object_unref (peer);
}

static gboolean
write_field (GQuark field, const GValue * v, gpointer data)
{
  GString *line = data;
  if (G_VALUE_HOLDS_STRING (v))
    g_string_append_printf (line, ",\"%s\":\"%s\"", g_quark_to_string (field),
        g_value_get_string (v));
  else {
    gchar *s = gst_value_serialize (v);
    g_string_append_printf (line, ",\"%s\":%s", g_quark_to_string (field), s);
    g_free (s);
  }
  return TRUE;
}

static void
on_change_state (FhCheck * self, guint64 ts, GstElement * element,
    GstStateChange transition)
{
  GParamSpec *ps;
  GstStructure *s = NULL;
  GString *line;

  if (transition != GST_STATE_CHANGE_PAUSED_TO_READY)
    return;
  ps = g_object_class_find_property (G_OBJECT_GET_CLASS (element), "stats");
  if (ps == NULL || ps->value_type != GST_TYPE_STRUCTURE)
    return;
  g_object_get (element, "stats", &s, NULL);
  if (s == NULL)
    return;
  line = g_string_new (NULL);
  g_string_append_printf (line, "{\"stats\":\"%s\"", GST_OBJECT_NAME (element));
  gst_structure_foreach (s, write_field, line);
  g_string_append (line, "}\n");
  g_mutex_lock (&self->lock);
  fputs (line->str, self->out);
  fflush (self->out);
  g_mutex_unlock (&self->lock);
  g_string_free (line, TRUE);
  gst_structure_free (s);
}

static void
fh_check_constructed (GObject * object)
{
  FhCheck *self = (FhCheck *) object;
  gchar *params = NULL;
  const char *path = NULL;

  G_OBJECT_CLASS (fh_check_parent_class)->constructed (object);
  g_object_get (self, "params", &params, NULL);
  if (params && g_str_has_prefix (params, "file="))
    path = params + 5;
  self->out = path ? fopen (path, "a") : NULL;
  if (self->out == NULL) {
    g_printerr ("fhcheck: params must be file=PATH (got %s): %s\n",
        params ? params : "none", g_strerror (errno));
    exit (2);
  }
  g_free (params);
  for (guint32 i = 0; i < 256; i++) {
    guint32 c = i;
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ ((c & 1) ? 0x82F63B78u : 0);
    self->crc[i] = c;
  }
  gst_tracing_register_hook (GST_TRACER (self), "pad-push-pre",
      G_CALLBACK (on_push));
  gst_tracing_register_hook (GST_TRACER (self), "element-change-state-pre",
      G_CALLBACK (on_change_state));
}

static void
fh_check_finalize (GObject * object)
{
  FhCheck *self = (FhCheck *) object;
  if (self->out)
    fclose (self->out);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (fh_check_parent_class)->finalize (object);
}

static void
fh_check_class_init (FhCheckClass * klass)
{
  G_OBJECT_CLASS (klass)->constructed = fh_check_constructed;
  G_OBJECT_CLASS (klass)->finalize = fh_check_finalize;
}

static void
fh_check_init (FhCheck * self)
{
  g_mutex_init (&self->lock);
}

static gboolean
plugin_init (GstPlugin * plugin)
{
  return gst_tracer_register (plugin, "fhcheck", fh_check_get_type ());
}

#define PACKAGE "framehub-tests"
GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, fhcheck,
    "framehub test tracer: zero-copy and stamp checks at sinks", plugin_init,
    "1.0", "unknown", "framehub", "https://github.com/framehub/framehub")
