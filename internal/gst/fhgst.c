/* C helpers of package internal/gst: pipelines, samples and buffers. See
 * fhgst.h and doc.go.
 *
 * Ownership rules, everywhere below: a function that returns a GstObject,
 * GstSample or GstBuffer returns one reference the caller must drop; fds in
 * FhBufDesc are borrowed from memories the sample keeps alive. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gst/allocators/allocators.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include "fhgst_priv.h"

/* ---------------------------------------------------------------------- */
/* Pipelines.                                                              */

void
fh_init (void)
{
  static gsize once = 0;
  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (fh_debug, "framehub", 0, "framehub producer");
    g_type_class_unref (g_type_class_ref (FH_TYPE_MEMFD_POOL));
    g_once_init_leave (&once, 1);
  }
}

GstElement *
fh_parse_launch (const char *desc, char **errmsg, char ***missing)
{
  GstParseContext *ctx = gst_parse_context_new ();
  GError *err = NULL;
  GstElement *e;

  *errmsg = NULL;
  *missing = NULL;
  e = gst_parse_launch_full (desc, ctx, GST_PARSE_FLAG_FATAL_ERRORS, &err);
  if (err != NULL || e == NULL) {
    *errmsg = g_strdup (err ? err->message : "gst_parse_launch failed");
    *missing = gst_parse_context_get_missing_elements (ctx);
    g_clear_error (&err);
    if (e)
      gst_object_unref (e);
    e = NULL;
  } else {
    gst_object_ref_sink (e);
    if (!GST_IS_PIPELINE (e)) {
      *errmsg = g_strdup ("description is not a pipeline");
      gst_object_unref (e);
      e = NULL;
    }
  }
  gst_parse_context_free (ctx);
  return e;
}

GstElement *
fh_bin_get (GstElement * bin, const char *name)
{
  return gst_bin_get_by_name (GST_BIN (bin), name);
}

/* fh_run_dispose makes an object drop every reference it holds now
 * instead of when its last reference goes: go-gst's wrappers drop theirs
 * only when the garbage collector finalizes them. */
void
fh_run_dispose (gpointer obj)
{
  if (obj)
    g_object_run_dispose (G_OBJECT (obj));
}

void
fh_unref (gpointer obj)
{
  if (obj)
    gst_object_unref (obj);
}

/* fh_mono_base returns the pipeline's base time when its clock is the
 * system clock on CLOCK_MONOTONIC (GStreamer's default), so that base time
 * + running time is the capture time on CLOCK_MONOTONIC; -1 otherwise. */
int64_t
fh_mono_base (GstElement * pipeline)
{
  GstClock *clock = gst_element_get_clock (pipeline);
  GstClockType type = GST_CLOCK_TYPE_REALTIME;
  int64_t base = -1;

  if (clock == NULL)
    return -1;
  if (GST_IS_SYSTEM_CLOCK (clock)) {
    g_object_get (clock, "clock-type", &type, NULL);
    if (type == GST_CLOCK_TYPE_MONOTONIC)
      base = (int64_t) gst_element_get_base_time (pipeline);
  }
  gst_object_unref (clock);
  return base;
}

/* ---------------------------------------------------------------------- */
/* Samples and buffers.                                                    */

/* A watch on an appsink (SampleWatch in gst.go): its callbacks only count
 * on an eventfd, so that GStreamer's streaming threads never run Go code.
 *
 * While idle (no consumer subscribed and nothing else wants the frames)
 * the streaming thread pulls and drops each sample itself, as long as its
 * caps are those Go saw last, and counts it: waking the Go runtime for a
 * frame nobody reads cost more than the frame (each wake-up also wakes Go's
 * sysmon, which then polls every 20 us). Every FH_UNWATCHED_SYNC dropped
 * samples, Go is woken once to take the count. A sample with other caps
 * ends idling: it is kept for Go (fh_watch_pull) and Go is woken.
 *
 * In ring mode (fh_watch_prepare, fhgst.h) the streaming thread also does
 * the per-frame C work Go would otherwise enter C for: it pulls, compares
 * the caps, describes and references the buffer, into a ring Go reads
 * from its own memory. Each cgo call enters Go's system-call state, and
 * the first after an idle spell wakes sysmon: a frame that costs Go no
 * cgo call at all (and whose references go back through the pool's
 * FhDeferred) lets sysmon sleep. */
#define FH_UNWATCHED_SYNC 30

/* fh_caps_same reports whether a and b are the same caps: one object, or
 * equal. */
static gboolean
fh_caps_same (GstCaps * a, GstCaps * b)
{
  return a == b || (a != NULL && b != NULL && gst_caps_is_equal (a, b));
}

static void
fh_notify (int efd)
{
  const uint64_t one = 1;
  ssize_t n;
  do {
    n = write (efd, &one, sizeof one);
  } while (n < 0 && errno == EINTR);
  /* EAGAIN means the counter is already non-zero: the reader is due. */
}

/* fh_ready_fill fills slot r with s (taking s's reference): prepared when
 * s has the prepared caps and a buffer of an FhMemfdPool. w->lock held. */
static void
fh_ready_fill (FhWatch * w, FhReady * r, GstSample * s)
{
  GstBuffer *buf = gst_sample_get_buffer (s);
  GstCaps *caps = gst_sample_get_caps (s);

  memset (r, 0, sizeof *r);
  r->sample = s;
  if (w->prep_caps == NULL || buf == NULL || buf->pool == NULL
      || !FH_IS_MEMFD_POOL (buf->pool) || !fh_caps_same (caps, w->prep_caps))
    return;
  r->deferred = fh_memfd_pool_deferred (buf->pool);
  /* What Go gave back since the last frame returns to the pool first, so
   * that the outstanding count describe reads is today's. */
  fh_deferred_drain (r->deferred);
  fh_describe (s, w->prep_vi, w->prep_observer, &r->desc);
  r->buffer = gst_buffer_ref (buf);
  r->gen = w->prep_gen;
}

/* fh_watch_fill moves held and queued samples into the ring while it has
 * room, and sets backlog when samples are left. w->lock held, ring mode. */
static void
fh_watch_fill (FhWatch * w)
{
  for (;;) {
    GstSample *s;
    uint64_t tail = w->ready_tail;
    if (tail - __atomic_load_n (&w->ready_head, __ATOMIC_ACQUIRE) >=
        FH_READY_CAP) {
      __atomic_store_n (&w->backlog, 1, __ATOMIC_SEQ_CST);
      return;
    }
    if (w->held != NULL) {
      s = w->held;
      w->held = NULL;
    } else if ((s = gst_app_sink_try_pull_sample (GST_APP_SINK (w->appsink),
                0)) == NULL) {
      __atomic_store_n (&w->backlog, 0, __ATOMIC_SEQ_CST);
      return;
    }
    fh_ready_fill (w, &w->ready[tail % FH_READY_CAP], s);
    __atomic_store_n (&w->ready_tail, tail + 1, __ATOMIC_RELEASE);
  }
}

static GstFlowReturn
fh_notify_sample (GstAppSink * sink, gpointer data)
{
  FhWatch *w = data;
  gboolean wake = TRUE;

  g_mutex_lock (&w->lock);
  if (w->idle && w->held == NULL) {
    GstSample *s = gst_app_sink_try_pull_sample (sink, 0);
    if (s != NULL) {
      GstCaps *caps = gst_sample_get_caps (s);
      if (fh_caps_same (caps, w->caps)) {
        gst_sample_unref (s);
        __atomic_add_fetch (&w->unwatched, 1, __ATOMIC_SEQ_CST);
        wake = ++w->since_sync >= FH_UNWATCHED_SYNC;
        if (wake)
          w->since_sync = 0;
      } else {
        w->held = s;
        w->idle = FALSE;
        gst_clear_caps (&w->caps);
      }
    }
  }
  if (w->ring && !w->idle)
    fh_watch_fill (w);
  g_mutex_unlock (&w->lock);
  if (wake)
    fh_notify (w->efd);
  return GST_FLOW_OK;
}

static void
fh_notify_eos (GstAppSink * sink, gpointer data)
{
  FhWatch *w = data;
  __atomic_store_n (&w->eos, 1, __ATOMIC_SEQ_CST);
  fh_notify (w->efd);
}

static void
fh_watch_free (gpointer data)
{
  FhWatch *w = data;
  uint64_t i;
  for (i = w->ready_head; i != w->ready_tail; i++) {
    FhReady *r = &w->ready[i % FH_READY_CAP];
    gst_sample_unref (r->sample);
    if (r->buffer)
      gst_buffer_unref (r->buffer);
  }
  if (w->held)
    gst_sample_unref (w->held);
  gst_clear_caps (&w->caps);
  gst_clear_caps (&w->prep_caps);
  if (w->prep_vi)
    gst_video_info_free (w->prep_vi);
  g_mutex_clear (&w->lock);
  g_free (w);
}

FhWatch *
fh_watch_new (GstElement * appsink, int efd)
{
  GstAppSinkCallbacks cb = { 0 };
  FhWatch *w = g_new0 (FhWatch, 1);
  w->appsink = appsink;
  w->efd = efd;
  w->backlog = 1;
  g_mutex_init (&w->lock);
  cb.new_sample = fh_notify_sample;
  cb.eos = fh_notify_eos;
  /* The appsink owns w from here: it frees it when the callbacks are
   * replaced (fh_watch_close) or the appsink is finalized. */
  gst_app_sink_set_callbacks (GST_APP_SINK (appsink), &cb, w, fh_watch_free);
  return w;
}

void
fh_watch_close (FhWatch * w)
{
  GstAppSinkCallbacks cb = { 0 };
  gst_app_sink_set_callbacks (GST_APP_SINK (w->appsink), &cb, NULL, NULL);
}

/* fh_watch_pull takes the next sample outside ring mode: the one that
 * ended idling, else the appsink's. */
GstSample *
fh_watch_pull (FhWatch * w)
{
  GstSample *s;
  g_mutex_lock (&w->lock);
  s = w->held;
  w->held = NULL;
  g_mutex_unlock (&w->lock);
  return s ? s : gst_app_sink_try_pull_sample (GST_APP_SINK (w->appsink), 0);
}

/* fh_watch_prepare starts ring mode, or goes on in it: samples with s's
 * caps (none when s is NULL) are prepared from now on, described with vi
 * and registered with observer. It returns the generation that samples
 * prepared so carry. */
uint64_t
fh_watch_prepare (FhWatch * w, GstSample * s, const GstVideoInfo * vi,
    uintptr_t observer)
{
  uint64_t gen;
  g_mutex_lock (&w->lock);
  gst_clear_caps (&w->prep_caps);
  if (w->prep_vi)
    gst_video_info_free (w->prep_vi);
  w->prep_vi = NULL;
  if (s != NULL && gst_sample_get_caps (s) != NULL) {
    w->prep_caps = gst_caps_ref (gst_sample_get_caps (s));
    w->prep_vi = vi ? gst_video_info_copy (vi) : NULL;
  }
  w->prep_observer = observer;
  gen = ++w->prep_gen;
  w->ring = 1;
  g_mutex_unlock (&w->lock);
  return gen;
}

/* fh_watch_refill is fh_watch_fill for Go, which calls it when the ring
 * is empty and backlog set. */
void
fh_watch_refill (FhWatch * w)
{
  g_mutex_lock (&w->lock);
  fh_watch_fill (w);
  g_mutex_unlock (&w->lock);
}

void
fh_watch_set_idle (FhWatch * w, GstSample * last)
{
  g_mutex_lock (&w->lock);
  gst_clear_caps (&w->caps);
  w->idle = last != NULL;
  if (last != NULL && gst_sample_get_caps (last) != NULL)
    w->caps = gst_caps_ref (gst_sample_get_caps (last));
  w->since_sync = 0;
  g_mutex_unlock (&w->lock);
}

/* ---------------------------------------------------------------------- */
/* Bus watch.                                                              */

struct _FhBusWatch
{
  int efd;                      /* borrowed: the Go side owns and closes it */
  guint types;
  GMutex lock;
  GQueue queue;                 /* GstMessage *, oldest first */
};

/* Runs on the thread that posts: a queue push and an eventfd write, never
 * Go code. The message is queued before Go is woken (a sync handler that
 * passed it would wake Go before the bus queues it), and the types nobody
 * watches are dropped, so the bus's own queue stays empty. */
static GstBusSyncReply
fh_bus_sync (GstBus * bus, GstMessage * msg, gpointer data)
{
  FhBusWatch *w = data;
  if ((GST_MESSAGE_TYPE (msg) & w->types) == 0)
    return GST_BUS_DROP;
  g_mutex_lock (&w->lock);
  g_queue_push_tail (&w->queue, gst_message_ref (msg));
  g_mutex_unlock (&w->lock);
  fh_notify (w->efd);
  return GST_BUS_DROP;
}

static void
fh_bus_watch_free (gpointer data)
{
  FhBusWatch *w = data;
  GstMessage *m;
  while ((m = g_queue_pop_head (&w->queue)) != NULL)
    gst_message_unref (m);
  g_mutex_clear (&w->lock);
  g_free (w);
}

FhBusWatch *
fh_bus_watch (GstElement * pipeline, int efd, guint types)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  FhBusWatch *w = g_new0 (FhBusWatch, 1);
  w->efd = efd;
  w->types = types;
  g_mutex_init (&w->lock);
  g_queue_init (&w->queue);
  gst_bus_set_sync_handler (bus, fh_bus_sync, w, fh_bus_watch_free);
  gst_object_unref (bus);
  return w;
}

GstMessage *
fh_bus_watch_pop (FhBusWatch * w)
{
  GstMessage *m;
  g_mutex_lock (&w->lock);
  m = g_queue_pop_head (&w->queue);
  g_mutex_unlock (&w->lock);
  return m;
}

void
fh_bus_unwatch (GstElement * pipeline)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  gst_bus_set_sync_handler (bus, NULL, NULL, NULL);
  gst_object_unref (bus);
}

int
fh_appsink_is_eos (GstElement * appsink)
{
  return gst_app_sink_is_eos (GST_APP_SINK (appsink));
}

void
fh_sample_unref (GstSample * s)
{
  if (s)
    gst_sample_unref (s);
}

GstBuffer *
fh_sample_buffer_ref (GstSample * s)
{
  GstBuffer *b = gst_sample_get_buffer (s);
  return b ? gst_buffer_ref (b) : NULL;
}

void
fh_buffer_unref (GstBuffer * b)
{
  if (b)
    gst_buffer_unref (b);
}

/* fh_sample_caps_changed reports whether the sample's caps differ from
 * *last, and then keeps a reference to them in *last (NULL: release). */
int
fh_sample_caps_changed (GstSample * s, GstCaps ** last)
{
  GstCaps *caps = s ? gst_sample_get_caps (s) : NULL;
  if (fh_caps_same (caps, *last))
    return 0;
  gst_caps_replace (last, caps);
  return 1;
}

GstVideoInfo *
fh_sample_video_info (GstSample * s)
{
  GstCaps *caps = gst_sample_get_caps (s);
  return caps ? gst_video_info_new_from_caps (caps) : NULL;
}

static int
fh_planes (GstBuffer * buf, const GstVideoInfo * vi, FhBufDesc * d)
{
  GstVideoMeta *m = gst_buffer_get_video_meta (buf);
  const GstVideoFormatInfo *finfo;
  gsize offsets[GST_VIDEO_MAX_PLANES];
  gint strides[GST_VIDEO_MAX_PLANES];
  guint h, n, i;

  if (m) {
    finfo = gst_video_format_get_info (m->format);
    h = m->height;
    n = m->n_planes;
    memcpy (offsets, m->offset, sizeof offsets);
    memcpy (strides, m->stride, sizeof strides);
  } else if (vi) {
    finfo = vi->finfo;
    h = GST_VIDEO_INFO_HEIGHT (vi);
    n = GST_VIDEO_INFO_N_PLANES (vi);
    memcpy (offsets, vi->offset, sizeof offsets);
    memcpy (strides, vi->stride, sizeof strides);
  } else {
    return 0;
  }
  if (finfo == NULL || n == 0 || n > GST_VIDEO_MAX_PLANES
      || GST_VIDEO_FORMAT_INFO_IS_TILED (finfo))
    return 0;
  for (i = 0; i < n; i++) {
    gint comps[GST_VIDEO_MAX_COMPONENTS];
    guint idx, len;
    gsize skip;
    GstMemory *mem;

    if (strides[i] <= 0)
      return 0;
    gst_video_format_info_component (finfo, i, comps);
    if (!gst_buffer_find_memory (buf, offsets[i], 1, &idx, &len, &skip))
      return 0;
    mem = gst_buffer_peek_memory (buf, idx);
    d->planes[i].mem = (int) idx;
    d->planes[i].offset = mem->offset + skip;
    d->planes[i].stride = strides[i];
    d->planes[i].size = (uint64_t) strides[i] *
        GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT (finfo, comps[0], h);
  }
  d->n_planes = (int) n;
  return 1;
}

static int64_t
fh_time (GstClockTime t)
{
  return GST_CLOCK_TIME_IS_VALID (t) ? (int64_t) t : -1;
}

/* fh_sample_timing fills d's timestamps and flags only (encoded data). */
int
fh_sample_timing (GstSample * s, FhBufDesc * d)
{
  GstBuffer *buf = gst_sample_get_buffer (s);
  GstSegment *seg = gst_sample_get_segment (s);

  memset (d, 0, sizeof *d);
  if (buf == NULL)
    return 0;
  d->pts = fh_time (GST_BUFFER_PTS (buf));
  d->dts = fh_time (GST_BUFFER_DTS (buf));
  d->dur = fh_time (GST_BUFFER_DURATION (buf));
  d->running = -1;
  if (seg && seg->format == GST_FORMAT_TIME && d->pts >= 0)
    d->running = fh_time (gst_segment_to_running_time (seg, GST_FORMAT_TIME,
            GST_BUFFER_PTS (buf)));
  d->delta = GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DELTA_UNIT);
  return 1;
}

/* fh_describe fills d for the sample's buffer and registers each shareable
 * memory with observer (once per memory, reported by mems[i].fresh). */
int
fh_describe (GstSample * s, const GstVideoInfo * vi, uintptr_t observer,
    FhBufDesc * d)
{
  GstBuffer *buf = gst_sample_get_buffer (s);
  GstBufferPool *pool;
  FhTag *tags[FH_MAX_MEMS];
  guint n, i;
  int kind = -1;

  if (!fh_sample_timing (s, d))
    return 0;

  pool = buf->pool;
  if (pool) {
    d->pool = (uintptr_t) pool;
    if (FH_IS_MEMFD_POOL (pool)) {
      d->ours = 1;
      d->pool_outstanding = fh_memfd_pool_outstanding (pool);
    }
    {
      GstStructure *conf = gst_buffer_pool_get_config (pool);
      guint max = 0;
      if (conf) {
        gst_buffer_pool_config_get_params (conf, NULL, NULL, NULL, &max);
        gst_structure_free (conf);
      }
      d->pool_max = (int) max;
    }
  }

  n = gst_buffer_n_memory (buf);
  if (n == 0 || n > FH_MAX_MEMS)
    return 1;
  for (i = 0; i < n; i++) {
    GstMemory *mem = gst_buffer_peek_memory (buf, i);
    FhTag *t = fh_tag_get (mem);
    if (t == NULL)
      t = fh_tag_foreign (mem);
    if (t == NULL || (kind >= 0 && kind != t->kind))
      return 1;
    kind = t->kind;
    tags[i] = t;
    d->mems[i].share_fd = t->share_fd;
    d->mems[i].dev = t->dev;
    d->mems[i].ino = t->ino;
    d->mems[i].fd_size = t->fd_size;
    d->mems[i].offset = mem->offset;
    d->mems[i].size = mem->size;
  }
  d->n_mems = (int) n;
  if (n == 1 && tags[0]->nvmm) {
    /* NVMM: the GstMemory is the NvBufSurface; the frame is its DMA-BUF. */
    d->mems[0].offset = 0;
    d->mems[0].size = tags[0]->nvmm_size;
    d->n_planes = tags[0]->n_planes;
    for (i = 0; i < (guint) tags[0]->n_planes; i++) {
      d->planes[i].mem = 0;
      d->planes[i].offset = tags[0]->plane_offset[i];
      d->planes[i].stride = tags[0]->plane_stride[i];
      d->planes[i].size = tags[0]->plane_size[i];
    }
  } else if (!fh_planes (buf, vi, d))
    return 1;
  for (i = 0; i < n; i++) {
    if (observer && tags[i]->observer == 0) {
      tags[i]->observer = observer;
      d->mems[i].fresh = 1;
    }
  }
  d->kind = kind;
  return 1;
}

int
fh_copy_frame (GstSample * s, const GstVideoInfo * vi, guint8 * dst,
    gsize dst_len, const uint32_t * offsets, const uint32_t * strides,
    int n_planes)
{
  GstBuffer *buf = gst_sample_get_buffer (s);
  const GstVideoFormatInfo *finfo = vi->finfo;
  GstVideoFrame f;
  int p, ok = 1;

  if (buf == NULL || !gst_video_frame_map (&f, (GstVideoInfo *) vi, buf,
          GST_MAP_READ))
    return 0;
  if (n_planes != (int) GST_VIDEO_FRAME_N_PLANES (&f)) {
    gst_video_frame_unmap (&f);
    return 0;
  }
  for (p = 0; p < n_planes && ok; p++) {
    gint comps[GST_VIDEO_MAX_COMPONENTS];
    gsize row, rows, r, sstride;
    const guint8 *src;

    gst_video_format_info_component (finfo, p, comps);
    row = (gsize) GST_VIDEO_FORMAT_INFO_SCALE_WIDTH (finfo, comps[0],
        GST_VIDEO_FRAME_WIDTH (&f)) * GST_VIDEO_FORMAT_INFO_PSTRIDE (finfo,
        comps[0]);
    rows = GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT (finfo, comps[0],
        GST_VIDEO_FRAME_HEIGHT (&f));
    sstride = GST_VIDEO_FRAME_PLANE_STRIDE (&f, p);
    src = GST_VIDEO_FRAME_PLANE_DATA (&f, p);
    if (rows == 0 || row > strides[p] || row > sstride
        || offsets[p] + (rows - 1) * strides[p] + row > dst_len) {
      ok = 0;
      break;
    }
    for (r = 0; r < rows; r++)
      memcpy (dst + offsets[p] + r * strides[p], src + r * sstride, row);
  }
  gst_video_frame_unmap (&f);
  return ok;
}

/* fh_extract copies the sample's bytes into dst when they fit and returns
 * their size either way. */
gsize
fh_extract (GstSample * s, guint8 * dst, gsize dst_len)
{
  GstBuffer *buf = gst_sample_get_buffer (s);
  gsize size = buf ? gst_buffer_get_size (buf) : 0;
  if (size > 0 && size <= dst_len)
    gst_buffer_extract (buf, 0, dst, size);
  return size;
}

int
fh_appsrc_push (GstElement * appsrc, GstSample * s)
{
  return (int) gst_app_src_push_sample (GST_APP_SRC (appsrc), s);
}

/* fh_appsrc_push_bytes copies len bytes into a new buffer with the given
 * timestamps (ns, -1: none) and pushes it (the appsrc takes it). */
int
fh_appsrc_push_bytes (GstElement * appsrc, const guint8 * data, gsize len,
    int64_t pts, int64_t dts, int64_t dur, int delta)
{
  GstBuffer *buf = gst_buffer_new_memdup (data, len);
  GST_BUFFER_PTS (buf) = pts >= 0 ? (GstClockTime) pts : GST_CLOCK_TIME_NONE;
  GST_BUFFER_DTS (buf) = dts >= 0 ? (GstClockTime) dts : GST_CLOCK_TIME_NONE;
  GST_BUFFER_DURATION (buf) =
      dur >= 0 ? (GstClockTime) dur : GST_CLOCK_TIME_NONE;
  if (delta)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DELTA_UNIT);
  return (int) gst_app_src_push_buffer (GST_APP_SRC (appsrc), buf);
}

int
fh_appsrc_eos (GstElement * appsrc)
{
  return (int) gst_app_src_end_of_stream (GST_APP_SRC (appsrc));
}

/* fh_appsrc_queued returns how many buffers wait in an appsrc's queue
 * (GStreamer >= 1.20). */
guint64
fh_appsrc_queued (GstElement * appsrc)
{
  return gst_app_src_get_current_level_buffers (GST_APP_SRC (appsrc));
}

/* fh_force_key_unit asks the encoder for a keyframe as soon as possible: an
 * upstream force-key-unit event received on its src pad, which a
 * GstVideoEncoder applies to the next frame it encodes. */
int
fh_force_key_unit (GstElement * encoder)
{
  GstPad *src = gst_element_get_static_pad (encoder, "src");
  gboolean ok;
  if (src == NULL)
    return 0;
  ok = gst_pad_send_event (src,
      gst_video_event_new_upstream_force_key_unit (GST_CLOCK_TIME_NONE, TRUE,
          0));
  gst_object_unref (src);
  return ok;
}


/* fh_request_key_unit asks whatever encodes upstream of a sink (an appsink
 * inside an application's pipeline) for a keyframe: an upstream
 * force-key-unit event sent from the sink's sink pad. It reports whether
 * an element upstream handled it. */
int
fh_request_key_unit (GstElement * sink)
{
  GstPad *pad = gst_element_get_static_pad (sink, "sink");
  gboolean ok;
  if (pad == NULL)
    return 0;
  ok = gst_pad_push_event (pad,
      gst_video_event_new_upstream_force_key_unit (GST_CLOCK_TIME_NONE, TRUE,
          0));
  gst_object_unref (pad);
  return ok;
}

/* fh_sample_media_type is the media type of the sample's caps
 * ("video/x-raw", "video/x-h264"), or NULL; borrowed from the sample. */
const char *
fh_sample_media_type (GstSample * s)
{
  GstCaps *caps = gst_sample_get_caps (s);
  if (caps == NULL || gst_caps_get_size (caps) == 0)
    return NULL;
  return gst_structure_get_name (gst_caps_get_structure (caps, 0));
}

/* fh_plane0_map_write maps the memory holding plane 0 of the sample's
 * video frame (where its GstVideoMeta, or vi, puts it) for writing,
 * whoever else holds the buffer: the caller writes only into buffers that
 * are its own (its memfd pool's). (gst_video_frame_map cannot: a buffer
 * inside a GstSample that appsink keeps a reference to is never
 * "writable".) NULL when the memory cannot be mapped so (read-only). The
 * caller unmaps with fh_plane_unmap. */
FhPlaneMap *
fh_plane0_map_write (GstSample * s, const GstVideoInfo * vi)
{
  GstBuffer *buf = gst_sample_get_buffer (s);
  GstVideoMeta *meta;
  gsize offset, skip, len;
  guint idx, n;
  gint stride;
  FhPlaneMap *m;

  if (buf == NULL || vi == NULL)
    return NULL;
  meta = gst_buffer_get_video_meta (buf);
  offset = meta ? meta->offset[0] : GST_VIDEO_INFO_PLANE_OFFSET (vi, 0);
  stride = meta ? meta->stride[0] : GST_VIDEO_INFO_PLANE_STRIDE (vi, 0);
  if (stride <= 0 || !gst_buffer_find_memory (buf, offset, 1, &idx, &n, &skip))
    return NULL;
  m = g_new0 (FhPlaneMap, 1);
  m->mem = gst_buffer_get_memory (buf, idx);
  if (!gst_memory_map (m->mem, &m->info, GST_MAP_WRITE)) {
    gst_memory_unref (m->mem);
    g_free (m);
    return NULL;
  }
  len = m->info.size - skip;
  m->y = m->info.data + skip;
  m->y_len = len;
  m->stride = stride;
  return m;
}

void
fh_plane_unmap (FhPlaneMap * m)
{
  gst_memory_unmap (m->mem, &m->info);
  gst_memory_unref (m->mem);
  g_free (m);
}

/* fh_sample_geometry reads width, height and framerate from the sample's
 * caps (any video caps, encoded too); 0 for what they lack (0/1 rate). */
void
fh_sample_geometry (GstSample * s, int *w, int *h, int *fps_n, int *fps_d)
{
  GstCaps *caps = gst_sample_get_caps (s);
  GstStructure *st;

  *w = *h = *fps_n = 0;
  *fps_d = 1;
  if (caps == NULL || gst_caps_get_size (caps) == 0)
    return;
  st = gst_caps_get_structure (caps, 0);
  gst_structure_get_int (st, "width", w);
  gst_structure_get_int (st, "height", h);
  if (!gst_structure_get_fraction (st, "framerate", fps_n, fps_d)
      || *fps_d == 0) {
    *fps_n = 0;
    *fps_d = 1;
  }
}
