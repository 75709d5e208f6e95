/* GstMemory for framehub frames: see fhmem.h.
 *
 * GstFdAllocator maps each GstFdMemory on its own: one mmap per frame,
 * which costs page faults on every frame a reader touches. Here every
 * frame gets its own root memory (so that the lease follows that memory
 * and every share of it: gst_memory_share makes the root memory, not the
 * surface, the parent), but mapping a frame returns the surface's single
 * mapping, made once (PROTOCOL.md §6, "Map once per surface"). The
 * allocators subclass GstFdAllocator and GstDmaBufAllocator, so the memory
 * type is "fd" or "dmabuf" and gst_fd_memory_get_fd returns the surface's
 * fd; only mem_map and mem_unmap are replaced. The GstFdMemory's own
 * mapping is never made, so freeing it unmaps nothing, and the fd carries
 * GST_FD_MEMORY_FLAG_DONT_CLOSE: the surface owns it. */
#include "fhmem.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <linux/dma-buf.h>

#include <gst/allocators/allocators.h>

typedef struct {
  FhLease *lease;
  int fd_index;
} FhMemTag;

static GQuark
fh_mem_quark (void)
{
  static gsize q;
  if (g_once_init_enter (&q))
    g_once_init_leave (&q, g_quark_from_static_string ("framehub-lease"));
  return (GQuark) q;
}

static void
fh_mem_tag_free (gpointer data)
{
  FhMemTag *t = data;
  fh_lease_unref (t->lease);
  g_free (t);
}

static FhMemTag *
fh_mem_tag (GstMemory * mem)
{
  GstMemory *root = mem->parent ? mem->parent : mem;
  return gst_mini_object_get_qdata (GST_MINI_OBJECT_CAST (root),
      fh_mem_quark ());
}

static void
dmabuf_sync (FhMemTag * t, guint64 flags)
{
  struct dma_buf_sync s = { flags | DMA_BUF_SYNC_READ };
  int fd = t->lease->surf->fds[t->fd_index];
  while (ioctl (fd, DMA_BUF_IOCTL_SYNC, &s) < 0
      && (errno == EINTR || errno == EAGAIN));
}

static gpointer
fh_mem_map (GstMemory * mem, gsize maxsize, GstMapFlags flags)
{
  FhMemTag *t = fh_mem_tag (mem);
  uint8_t *p;

  (void) maxsize;
  /* Surfaces are read-only: a writer gets a copy (gst_memory_make_mapped). */
  if (t == NULL || (flags & GST_MAP_WRITE))
    return NULL;
  p = fh_surface_map (t->lease->surf, t->fd_index);
  if (p && t->lease->surf->kind == FH_KIND_DMABUF)
    dmabuf_sync (t, DMA_BUF_SYNC_START);
  return p;
}

static void
fh_mem_unmap (GstMemory * mem)
{
  FhMemTag *t = fh_mem_tag (mem);
  if (t && t->lease->surf->kind == FH_KIND_DMABUF)
    dmabuf_sync (t, DMA_BUF_SYNC_END);
}

typedef struct {
  GstFdAllocator parent;
} FhFdAllocator;

typedef struct {
  GstFdAllocatorClass parent_class;
} FhFdAllocatorClass;

G_DEFINE_TYPE (FhFdAllocator, fh_fd_allocator, GST_TYPE_FD_ALLOCATOR);

static void
fh_fd_allocator_class_init (FhFdAllocatorClass * klass)
{
  (void) klass;
}

static void
fh_fd_allocator_init (FhFdAllocator * a)
{
  GstAllocator *alloc = GST_ALLOCATOR_CAST (a);
  alloc->mem_map = fh_mem_map;
  alloc->mem_unmap = fh_mem_unmap;
}

typedef struct {
  GstDmaBufAllocator parent;
} FhDmabufAllocator;

typedef struct {
  GstDmaBufAllocatorClass parent_class;
} FhDmabufAllocatorClass;

G_DEFINE_TYPE (FhDmabufAllocator, fh_dmabuf_allocator,
    GST_TYPE_DMABUF_ALLOCATOR);

static void
fh_dmabuf_allocator_class_init (FhDmabufAllocatorClass * klass)
{
  (void) klass;
}

static void
fh_dmabuf_allocator_init (FhDmabufAllocator * a)
{
  GstAllocator *alloc = GST_ALLOCATOR_CAST (a);
  alloc->mem_map = fh_mem_map;
  alloc->mem_unmap = fh_mem_unmap;
}

GstAllocator *
fh_allocator_new (gboolean dmabuf)
{
  GstAllocator *a = g_object_new (dmabuf ? fh_dmabuf_allocator_get_type () :
      fh_fd_allocator_get_type (), NULL);
  gst_object_ref_sink (a);
  return a;
}

GstMemory *
fh_memory_new (GstAllocator * alloc, FhLease * lease, int fd_index,
    gsize offset, gsize size)
{
  FhSurface *s = lease->surf;
  FhMemTag *t;
  GstMemory *mem;

  mem = gst_fd_allocator_alloc (alloc, s->fds[fd_index], s->map_len[fd_index],
      GST_FD_MEMORY_FLAG_DONT_CLOSE);
  if (mem == NULL)
    return NULL;
  gst_memory_resize (mem, (gssize) offset, size);
  GST_MINI_OBJECT_FLAG_SET (mem, GST_MEMORY_FLAG_READONLY);
  t = g_new (FhMemTag, 1);
  t->lease = fh_lease_ref (lease);
  t->fd_index = fd_index;
  gst_mini_object_set_qdata (GST_MINI_OBJECT_CAST (mem), fh_mem_quark (), t,
      fh_mem_tag_free);
  return mem;
}
