/* FhMemfdPool, the memory tags and the ALLOCATION query answer of package
 * internal/gst. See doc.go. */
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
#include "_cgo_export.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

GST_DEBUG_CATEGORY (fh_debug);
/* ---------------------------------------------------------------------- */
/* Memory tags: what framehub knows about a GstMemory, as qdata on it.     */

static GQuark
fh_tag_quark (void)
{
  static gsize once = 0;
  static GQuark q;
  if (g_once_init_enter (&once)) {
    q = g_quark_from_static_string ("framehub-memory-tag");
    g_once_init_leave (&once, 1);
  }
  return q;
}

/* Runs when the memory is finalized: before the memory's own free closes
 * its fd, so the inode cannot be reused before the observer forgot it. */
static void
fh_tag_free (gpointer data)
{
  FhTag *t = data;
  if (t->observer)
    fhMemFreed (t->observer, t->dev, t->ino);
  if (t->owns_fd && t->share_fd >= 0)
    close (t->share_fd);
  g_free (t);
}

FhTag *
fh_tag_get (GstMemory * mem)
{
  return gst_mini_object_get_qdata (GST_MINI_OBJECT_CAST (mem), fh_tag_quark ());
}

/* fh_reopen_ro opens /proc/self/fd/N read-only: a new open file description
 * of the same inode through which nobody can write or map writable. */
static int
fh_reopen_ro (int fd)
{
  char path[64];
  int ro;
  snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
  do {
    ro = open (path, O_RDONLY | O_CLOEXEC);
  } while (ro < 0 && errno == EINTR);
  return ro;
}

static int
fh_tag_stat (FhTag * t, gsize fallback_size)
{
  struct stat st;
  if (fstat (t->share_fd, &st) < 0)
    return 0;
  t->dev = st.st_dev;
  t->ino = st.st_ino;
  /* dma-buf inodes carry the buffer size; anything else falls back to the
   * memory's extent. */
  t->fd_size = st.st_size > 0 ? (uint64_t) st.st_size : fallback_size;
  return 1;
}

/* fh_tag_foreign tags a memory that framehub did not allocate: a DMA-BUF is
 * shared as it is, another fd memory through a read-only reopen. */
FhTag *
fh_tag_foreign (GstMemory * mem)
{
  FhTag *t;
  gsize offset, maxsize;

  if ((t = fh_tag_get (mem)))
    return t;
  gst_memory_get_sizes (mem, &offset, &maxsize);
  t = g_new0 (FhTag, 1);
  t->share_fd = -1;
  if (gst_is_dmabuf_memory (mem)) {
    t->kind = FH_KIND_DMABUF;
    t->share_fd = gst_dmabuf_memory_get_fd (mem);
  } else if (gst_is_fd_memory (mem)) {
    t->kind = FH_KIND_MEMFD;
    t->share_fd = fh_reopen_ro (gst_fd_memory_get_fd (mem));
    t->owns_fd = 1;
  } else if (fh_nvmm_tag (mem, t)) {
    t->kind = FH_KIND_DMABUF;   /* Jetson NVMM: its DMA-BUF, as it is */
  }
  if (t->share_fd < 0 || !fh_tag_stat (t, t->nvmm ? t->nvmm_size : maxsize)) {
    if (t->owns_fd && t->share_fd >= 0)
      close (t->share_fd);
    g_free (t);
    return NULL;
  }
  gst_mini_object_set_qdata (GST_MINI_OBJECT_CAST (mem), fh_tag_quark (), t,
      fh_tag_free);
  return t;
}

/* ---------------------------------------------------------------------- */
/* FhMemfdPool: a GstBufferPool of sealed memfds.                          */

typedef struct {
  GstBufferPool parent;
  GstAllocator *fdalloc;
  GstVideoInfo info;
  gsize size;
  guint n_planes;
  gsize offsets[GST_VIDEO_MAX_PLANES];
  gint strides[GST_VIDEO_MAX_PLANES];
  guint min_buffers, max_buffers;
  gint outstanding;             /* atomic */
  FhDeferred deferred;          /* what Go gave back, see fhgst.h */
} FhMemfdPool;

typedef struct {
  GstBufferPoolClass parent_class;
} FhMemfdPoolClass;

G_DEFINE_TYPE (FhMemfdPool, fh_memfd_pool, GST_TYPE_BUFFER_POOL);
#define FH_MEMFD_POOL(o) ((FhMemfdPool *) (o))

static const gchar **
fh_pool_get_options (GstBufferPool * pool)
{
  static const gchar *options[] = { GST_BUFFER_POOL_OPTION_VIDEO_META, NULL };
  return options;
}

/* fh_pool_layout computes where the planes go. With video meta, NV12 gets
 * exactly producer/surface.NV12's layout (stride = width rounded up to 64,
 * UV plane at the Y size rounded up to 4096) so that zero-copy surfaces and
 * the copy pool's surfaces look the same to consumers; other formats get
 * 64-byte aligned strides. Without video meta upstream assumes GStreamer's
 * default layout, so that is what it gets. */
static gboolean
fh_pool_layout (FhMemfdPool * p, const GstVideoInfo * vi, gboolean meta)
{
  gsize page = (gsize) sysconf (_SC_PAGESIZE);
  GstVideoInfo info = *vi;
  guint i;

  p->n_planes = GST_VIDEO_INFO_N_PLANES (&info);
  if (meta && GST_VIDEO_INFO_FORMAT (&info) == GST_VIDEO_FORMAT_NV12) {
    gsize w = GST_VIDEO_INFO_WIDTH (&info), h = GST_VIDEO_INFO_HEIGHT (&info);
    gsize stride = FH_ALIGN (w, 64);
    gsize ysize = stride * h;
    gsize uvoff = FH_ALIGN (ysize, 4096);
    p->strides[0] = p->strides[1] = (gint) stride;
    p->offsets[0] = 0;
    p->offsets[1] = uvoff;
    p->size = FH_ALIGN (uvoff + stride * ((h + 1) / 2), page);
  } else {
    if (meta) {
      GstVideoAlignment align;
      gst_video_alignment_reset (&align);
      for (i = 0; i < GST_VIDEO_MAX_PLANES; i++)
        align.stride_align[i] = 63;
      if (!gst_video_info_align (&info, &align))
        return FALSE;
    }
    for (i = 0; i < p->n_planes; i++) {
      p->offsets[i] = GST_VIDEO_INFO_PLANE_OFFSET (&info, i);
      p->strides[i] = GST_VIDEO_INFO_PLANE_STRIDE (&info, i);
    }
    p->size = FH_ALIGN (GST_VIDEO_INFO_SIZE (&info), page);
  }
  p->info = *vi;
  return TRUE;
}

static gboolean
fh_pool_set_config (GstBufferPool * pool, GstStructure * config)
{
  FhMemfdPool *p = FH_MEMFD_POOL (pool);
  GstCaps *caps = NULL;
  guint size, min, max;
  GstVideoInfo vi;
  gboolean meta;

  if (!gst_buffer_pool_config_get_params (config, &caps, &size, &min, &max)
      || caps == NULL || !gst_video_info_from_caps (&vi, caps))
    return FALSE;
  meta = gst_buffer_pool_config_has_option (config,
      GST_BUFFER_POOL_OPTION_VIDEO_META);
  if (!fh_pool_layout (p, &vi, meta))
    return FALSE;
  if (size > p->size)
    p->size = FH_ALIGN ((gsize) size, (gsize) sysconf (_SC_PAGESIZE));
  /* framehub's bound wins: an unbounded pool would let leases grow memory
   * without limit. */
  if (max == 0 || max > p->max_buffers)
    max = p->max_buffers;
  if (min < p->min_buffers)
    min = p->min_buffers;
  if (min > max)
    min = max;
  gst_buffer_pool_config_set_params (config, caps, (guint) p->size, min, max);
  return GST_BUFFER_POOL_CLASS (fh_memfd_pool_parent_class)->set_config (pool,
      config);
}

static GstFlowReturn
fh_pool_alloc_buffer (GstBufferPool * pool, GstBuffer ** out,
    GstBufferPoolAcquireParams * params)
{
  FhMemfdPool *p = FH_MEMFD_POOL (pool);
  GstMemory *mem = NULL;
  GstMapInfo map;
  GstBuffer *buf;
  FhTag *t;
  int fd, ro;

  fd = memfd_create ("framehub-gst",
      MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
  if (fd < 0 && errno == EINVAL)        /* Linux < 6.3 */
    fd = memfd_create ("framehub-gst", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    GST_ERROR_OBJECT (pool, "memfd_create: %s", g_strerror (errno));
    return GST_FLOW_ERROR;
  }
  if (ftruncate (fd, (off_t) p->size) < 0
      || fcntl (fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
    GST_ERROR_OBJECT (pool, "size and seal memfd of %zu bytes: %s", p->size,
        g_strerror (errno));
    close (fd);
    return GST_FLOW_ERROR;
  }
  /* From here the memory owns fd. */
  mem = gst_fd_allocator_alloc (p->fdalloc, fd, p->size,
      GST_FD_MEMORY_FLAG_KEEP_MAPPED);
  if (mem == NULL) {
    close (fd);
    return GST_FLOW_ERROR;
  }
  /* The one writable mapping: made now, kept until the memory is freed.
   * After F_SEAL_FUTURE_WRITE nobody can make another one. */
  if (!gst_memory_map (mem, &map, GST_MAP_READWRITE)) {
    GST_ERROR_OBJECT (pool, "map memfd of %zu bytes", p->size);
    gst_memory_unref (mem);
    return GST_FLOW_ERROR;
  }
  gst_memory_unmap (mem, &map);
  if (fcntl (fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0 && errno != EINVAL) {
    GST_ERROR_OBJECT (pool, "seal future_write: %s", g_strerror (errno));
    gst_memory_unref (mem);
    return GST_FLOW_ERROR;
  }
  if (fcntl (fd, F_ADD_SEALS, F_SEAL_SEAL) < 0
      || (ro = fh_reopen_ro (fd)) < 0) {
    GST_ERROR_OBJECT (pool, "seal and reopen memfd read-only: %s",
        g_strerror (errno));
    gst_memory_unref (mem);
    return GST_FLOW_ERROR;
  }
  t = g_new0 (FhTag, 1);
  t->share_fd = ro;
  t->owns_fd = 1;
  t->kind = FH_KIND_MEMFD;
  if (!fh_tag_stat (t, p->size)) {
    close (ro);
    g_free (t);
    gst_memory_unref (mem);
    return GST_FLOW_ERROR;
  }
  gst_mini_object_set_qdata (GST_MINI_OBJECT_CAST (mem), fh_tag_quark (), t,
      fh_tag_free);

  buf = gst_buffer_new ();
  gst_buffer_append_memory (buf, mem);
  gst_buffer_add_video_meta_full (buf, GST_VIDEO_FRAME_FLAG_NONE,
      GST_VIDEO_INFO_FORMAT (&p->info), GST_VIDEO_INFO_WIDTH (&p->info),
      GST_VIDEO_INFO_HEIGHT (&p->info), p->n_planes, p->offsets, p->strides);
  *out = buf;
  return GST_FLOW_OK;
}

/* ---------------------------------------------------------------------- */
/* FhDeferred: the references Go gives back without a cgo call.            */

void
fh_mini_object_unref (void *obj)
{
  gst_mini_object_unref (GST_MINI_OBJECT_CAST (obj));
}

/* The references are dropped after drain_lock is released: dropping the
 * pool's last outstanding buffer while it is flushing takes the pool's
 * lock, which gst_buffer_pool_set_active holds while it calls flush_start,
 * which takes drain_lock. */
void
fh_deferred_drain (FhDeferred * d)
{
  void *objs[FH_DEFER_CAP];
  guint n = 0, i;
  uint64_t head, tail;
  g_mutex_lock (&d->drain_lock);
  head = __atomic_load_n (&d->head, __ATOMIC_SEQ_CST);
  tail = FH_DEFER_COUNT (__atomic_load_n (&d->tail, __ATOMIC_SEQ_CST));
  for (; head != tail && n < FH_DEFER_CAP; head++)
    objs[n++] = __atomic_load_n (&d->slots[head % FH_DEFER_CAP],
        __ATOMIC_ACQUIRE);
  /* The slots are free again once head passes them. */
  __atomic_store_n (&d->head, head, __ATOMIC_SEQ_CST);
  g_mutex_unlock (&d->drain_lock);
  for (i = 0; i < n; i++)
    fh_mini_object_unref (objs[i]);
}

/* fh_deferred_set adds delta to flushing or waiting (field), sets or
 * clears FH_DEFER_BLOCKED to match, lets a push in progress finish, then
 * drains: the flag shares tail's word, so a push either started before the
 * flag, and this drain takes it, or sees the flag and unrefs directly. */
static void
fh_deferred_set (FhDeferred * d, uint32_t * field, int delta)
{
  g_mutex_lock (&d->drain_lock);
  *field += delta;
  if (d->flushing || d->waiting > 0)
    __atomic_fetch_or (&d->tail, FH_DEFER_BLOCKED, __ATOMIC_SEQ_CST);
  else
    __atomic_fetch_and (&d->tail, ~FH_DEFER_BLOCKED, __ATOMIC_SEQ_CST);
  g_mutex_unlock (&d->drain_lock);
  /* A push is a slot write between two atomic operations; its goroutine
   * can only be descheduled in between. */
  while (__atomic_load_n (&d->tail, __ATOMIC_SEQ_CST) & FH_DEFER_PUSHING)
    g_thread_yield ();
  fh_deferred_drain (d);
}

FhDeferred *
fh_memfd_pool_deferred (GstBufferPool * pool)
{
  return &FH_MEMFD_POOL (pool)->deferred;
}

/* Acquire returns what Go gave back to the pool first. When every buffer
 * is out it waits like the base class, but with the ring blocked: a
 * buffer given back meanwhile goes straight to the pool and wakes it. */
static GstFlowReturn
fh_pool_acquire_buffer (GstBufferPool * pool, GstBuffer ** buffer,
    GstBufferPoolAcquireParams * params)
{
  FhMemfdPool *p = FH_MEMFD_POOL (pool);
  GstBufferPoolClass *parent = GST_BUFFER_POOL_CLASS (fh_memfd_pool_parent_class);
  GstBufferPoolAcquireParams nowait = { 0 };
  GstFlowReturn ret;

  fh_deferred_drain (&p->deferred);
  if (params)
    nowait = *params;
  nowait.flags |= GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT;
  ret = parent->acquire_buffer (pool, buffer, &nowait);
  if (ret == GST_FLOW_EOS
      && !(params && (params->flags & GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT))) {
    fh_deferred_set (&p->deferred, &p->deferred.waiting, 1);
    ret = parent->acquire_buffer (pool, buffer, params);
    fh_deferred_set (&p->deferred, &p->deferred.waiting, -1);
  }
  if (ret == GST_FLOW_OK)
    g_atomic_int_inc (&p->outstanding);
  return ret;
}

/* A flushing pool (deactivated, or flushed) may have nobody acquiring: Go
 * gives its references back directly until it is active again. */
static void
fh_pool_flush_start (GstBufferPool * pool)
{
  FhMemfdPool *p = FH_MEMFD_POOL (pool);
  fh_deferred_set (&p->deferred, &p->deferred.flushing, 1);
}

static void
fh_pool_flush_stop (GstBufferPool * pool)
{
  FhMemfdPool *p = FH_MEMFD_POOL (pool);
  fh_deferred_set (&p->deferred, &p->deferred.flushing, -1);
}

/* Counted in reset_buffer, not release_buffer: the base class also calls
 * release_buffer on the buffers it preallocates at start, which were never
 * acquired; reset_buffer runs only on the return of an acquired buffer. */
static void
fh_pool_reset_buffer (GstBufferPool * pool, GstBuffer * buffer)
{
  g_atomic_int_add (&FH_MEMFD_POOL (pool)->outstanding, -1);
  GST_BUFFER_POOL_CLASS (fh_memfd_pool_parent_class)->reset_buffer (pool,
      buffer);
}

int
fh_memfd_pool_outstanding (GstBufferPool * pool)
{
  return g_atomic_int_get (&FH_MEMFD_POOL (pool)->outstanding);
}

static void
fh_memfd_pool_finalize (GObject * obj)
{
  /* Nothing waits in the ring: each reference there kept the pool alive. */
  g_mutex_clear (&FH_MEMFD_POOL (obj)->deferred.drain_lock);
  gst_clear_object (&FH_MEMFD_POOL (obj)->fdalloc);
  G_OBJECT_CLASS (fh_memfd_pool_parent_class)->finalize (obj);
}

static void
fh_memfd_pool_class_init (FhMemfdPoolClass * klass)
{
  GstBufferPoolClass *pc = GST_BUFFER_POOL_CLASS (klass);
  G_OBJECT_CLASS (klass)->finalize = fh_memfd_pool_finalize;
  pc->get_options = fh_pool_get_options;
  pc->set_config = fh_pool_set_config;
  pc->alloc_buffer = fh_pool_alloc_buffer;
  pc->acquire_buffer = fh_pool_acquire_buffer;
  pc->reset_buffer = fh_pool_reset_buffer;
  pc->flush_start = fh_pool_flush_start;
  pc->flush_stop = fh_pool_flush_stop;
}

static void
fh_memfd_pool_init (FhMemfdPool * p)
{
  p->fdalloc = gst_fd_allocator_new ();
  g_mutex_init (&p->deferred.drain_lock);
  /* A new pool is flushing until activated (GstBufferPool's own start). */
  p->deferred.flushing = 1;
  p->deferred.tail = FH_DEFER_BLOCKED;
}

GstBufferPool *
fh_memfd_pool_new (guint min, guint max)
{
  FhMemfdPool *p = g_object_new (FH_TYPE_MEMFD_POOL, NULL);
  gst_object_ref_sink (p);
  p->min_buffers = min;
  p->max_buffers = max;
  return GST_BUFFER_POOL (p);
}

/* ---------------------------------------------------------------------- */
/* The ALLOCATION query answer.                                            */

typedef struct {
  guint min, max;
} FhProbeCfg;

static GstPadProbeReturn
fh_alloc_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  FhProbeCfg *cfg = user_data;
  GstQuery *q = GST_PAD_PROBE_INFO_QUERY (info);
  GstCaps *caps = NULL;
  GstCapsFeatures *features;
  GstBufferPool *pool;
  GstStructure *conf;
  GstVideoInfo vi;
  guint size, min, max;

  if (q == NULL || GST_QUERY_TYPE (q) != GST_QUERY_ALLOCATION)
    return GST_PAD_PROBE_OK;
  gst_query_parse_allocation (q, &caps, NULL);
  if (caps == NULL || !gst_video_info_from_caps (&vi, caps))
    return GST_PAD_PROBE_OK;
  /* NVMM, DMABuf and other special memory stay with their producer: those
   * buffers are adopted, not allocated by us. */
  features = gst_caps_get_features (caps, 0);
  if (features && !gst_caps_features_is_equal (features,
          GST_CAPS_FEATURES_MEMORY_SYSTEM_MEMORY))
    return GST_PAD_PROBE_OK;

  pool = fh_memfd_pool_new (cfg->min, cfg->max);
  conf = gst_buffer_pool_get_config (pool);
  gst_buffer_pool_config_set_params (conf, caps, (guint) vi.size, cfg->min,
      cfg->max);
  gst_buffer_pool_config_add_option (conf, GST_BUFFER_POOL_OPTION_VIDEO_META);
  if (!gst_buffer_pool_set_config (pool, conf)) {
    GST_WARNING_OBJECT (pad, "memfd pool refused config for %" GST_PTR_FORMAT,
        caps);
    gst_object_unref (pool);
    return GST_PAD_PROBE_OK;
  }
  conf = gst_buffer_pool_get_config (pool);
  gst_buffer_pool_config_get_params (conf, NULL, &size, &min, &max);
  gst_structure_free (conf);
  while (gst_query_get_n_allocation_pools (q) > 0)
    gst_query_remove_nth_allocation_pool (q, 0);
  gst_query_add_allocation_pool (q, pool, size, min, max);
  if (!gst_query_find_allocation_meta (q, GST_VIDEO_META_API_TYPE, NULL))
    gst_query_add_allocation_meta (q, GST_VIDEO_META_API_TYPE, NULL);
  gst_object_unref (pool);
  return GST_PAD_PROBE_HANDLED;
}

gulong
fh_install_alloc_probe (GstElement * sink, guint min, guint max)
{
  GstPad *pad = gst_element_get_static_pad (sink, "sink");
  FhProbeCfg *cfg;
  gulong id;

  if (pad == NULL)
    return 0;
  cfg = g_new0 (FhProbeCfg, 1);
  cfg->min = min;
  cfg->max = max;
  id = gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM,
      fh_alloc_probe, cfg, g_free);
  gst_object_unref (pad);
  return id;
}


void
fh_remove_probe (GstElement * sink, gulong id)
{
  GstPad *pad = gst_element_get_static_pad (sink, "sink");
  if (pad == NULL)
    return;
  gst_pad_remove_probe (pad, id);
  gst_object_unref (pad);
}
