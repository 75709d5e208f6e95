//go:build jetson

/* fhgst_nvmm.c: adoption of Jetson memory:NVMM buffers (build tag jetson).
 * Compiled and unit-tested (with a synthetic NVMM memory) on x86 CI; NOT run
 * on Jetson hardware: the layout comes from nvbufsurface.h (see
 * nvmm_layout.h). */
#include <limits.h>

#include <gst/gst.h>

#include "fhgst_priv.h"
#include "nvmm_layout.h"

/* fh_nvmm_tag fills t for an NVMM memory holding one pitch-linear NV12
 * surface: its DMA-BUF fd (borrowed from the NvBufSurface, which the
 * GstBuffer keeps alive) and its planes. It returns 0 for anything else
 * (other memory, a batch, block-linear layout), which is then not adopted. */
int
fh_nvmm_tag (GstMemory * mem, FhTag * t)
{
  GstMapInfo map;
  const FhNvBufSurface *s;
  const FhNvBufSurfaceParams *p;
  guint i;
  int ok = 0;

  if (!gst_memory_is_type (mem, "nvmm") || !gst_memory_map (mem, &map, GST_MAP_READ))
    return 0;
  s = (const FhNvBufSurface *) map.data;
  if (map.size < sizeof *s || s->batchSize != 1 || s->numFilled != 1 || s->surfaceList == NULL
      || (s->memType != FH_NVBUF_MEM_SURFACE_ARRAY && s->memType != FH_NVBUF_MEM_HANDLE))
    goto out;
  p = &s->surfaceList[0];
  if (p->layout != FH_NVBUF_LAYOUT_PITCH || p->bufferDesc == 0 || p->bufferDesc > INT_MAX
      || (p->colorFormat != FH_NVBUF_COLOR_FORMAT_NV12 && p->colorFormat != FH_NVBUF_COLOR_FORMAT_NV12_ER)
      || p->planeParams.num_planes != 2)
    goto out;
  for (i = 0; i < p->planeParams.num_planes; i++) {
    if (p->planeParams.pitch[i] == 0 || p->planeParams.pitch[i] > INT32_MAX
        || (uint64_t) p->planeParams.offset[i] + p->planeParams.psize[i] > p->dataSize)
      goto out;
    t->plane_offset[i] = p->planeParams.offset[i];
    t->plane_stride[i] = (int32_t) p->planeParams.pitch[i];
    t->plane_size[i] = p->planeParams.psize[i];
  }
  t->n_planes = (int) p->planeParams.num_planes;
  t->share_fd = (int) p->bufferDesc;
  t->owns_fd = 0;
  t->nvmm = 1;
  t->nvmm_size = p->dataSize;
  ok = 1;
out:
  gst_memory_unmap (mem, &map);
  return ok;
}
