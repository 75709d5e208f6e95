//go:build jetson

/* Test support for fhgst_nvmm.c (build tag jetson): a GstMemory shaped like
 * a Jetson memory:NVMM one — allocator mem_type "nvmm", its bytes an
 * NvBufSurface (nvmm_layout.h) whose surface's bufferDesc is a given fd.
 * Not NVIDIA's allocator: only the layout framehub reads. */
#include <string.h>

#include <gst/gst.h>

#include "fhgst_priv.h"
#include "nvmm_layout.h"

typedef struct {
  GstAllocator parent;
} FhTestNvmmAllocator;

typedef struct {
  GstAllocatorClass parent_class;
} FhTestNvmmAllocatorClass;

typedef struct {
  GstMemory mem;
  FhNvBufSurface surf;
  FhNvBufSurfaceParams params;
} FhTestNvmmMemory;

G_DEFINE_TYPE (FhTestNvmmAllocator, fh_test_nvmm_allocator, GST_TYPE_ALLOCATOR);

static gpointer
fh_test_nvmm_map (GstMemory * mem, gsize maxsize, GstMapFlags flags)
{
  (void) maxsize;
  (void) flags;
  return &((FhTestNvmmMemory *) mem)->surf;
}

static void
fh_test_nvmm_unmap (GstMemory * mem)
{
  (void) mem;
}

static void
fh_test_nvmm_free (GstAllocator * alloc, GstMemory * mem)
{
  (void) alloc;
  g_free (mem);
}

static void
fh_test_nvmm_allocator_class_init (FhTestNvmmAllocatorClass * klass)
{
  GST_ALLOCATOR_CLASS (klass)->free = fh_test_nvmm_free;
}

static void
fh_test_nvmm_allocator_init (FhTestNvmmAllocator * a)
{
  GstAllocator *alloc = GST_ALLOCATOR_CAST (a);
  alloc->mem_type = "nvmm";
  alloc->mem_map = fh_test_nvmm_map;
  alloc->mem_unmap = fh_test_nvmm_unmap;
  GST_OBJECT_FLAG_SET (alloc, GST_ALLOCATOR_FLAG_CUSTOM_ALLOC);
}

/* fh_test_nvmm_buffer wraps fd as the DMA-BUF of a pitch-linear NV12
 * NvBufSurface of w x h with the given pitch and UV offset; layout and
 * batch let a test make one framehub must refuse. */
GstBuffer *
fh_test_nvmm_buffer (int fd, uint32_t size, uint32_t w, uint32_t h,
    uint32_t pitch, uint32_t uv_offset, int layout, uint32_t batch)
{
  GstAllocator *alloc = g_object_new (fh_test_nvmm_allocator_get_type (), NULL);
  FhTestNvmmMemory *m = g_new0 (FhTestNvmmMemory, 1);
  GstBuffer *buf;

  gst_object_ref_sink (alloc);
  gst_memory_init (GST_MEMORY_CAST (m), 0, alloc, NULL, sizeof m->surf, 0, 0,
      sizeof m->surf);
  gst_object_unref (alloc);     /* the memory holds its own reference */
  m->surf.batchSize = batch;
  m->surf.numFilled = batch;
  m->surf.memType = FH_NVBUF_MEM_SURFACE_ARRAY;
  m->surf.surfaceList = &m->params;
  m->params.width = w;
  m->params.height = h;
  m->params.pitch = pitch;
  m->params.colorFormat = FH_NVBUF_COLOR_FORMAT_NV12;
  m->params.layout = layout;
  m->params.bufferDesc = (uint64_t) fd;
  m->params.dataSize = size;
  m->params.planeParams.num_planes = 2;
  m->params.planeParams.pitch[0] = m->params.planeParams.pitch[1] = pitch;
  m->params.planeParams.offset[1] = uv_offset;
  m->params.planeParams.psize[0] = pitch * h;
  m->params.planeParams.psize[1] = pitch * h / 2;
  buf = gst_buffer_new ();
  gst_buffer_append_memory (buf, GST_MEMORY_CAST (m));
  return buf;
}
