/* Private declarations shared by the C files of package internal/gst. */
#ifndef FRAMEHUB_FHGST_PRIV_H
#define FRAMEHUB_FHGST_PRIV_H

#include "fhgst.h"

GST_DEBUG_CATEGORY_EXTERN (fh_debug);
#define GST_CAT_DEFAULT fh_debug

#define FH_ALIGN(n, a) (((n) + ((a) - 1)) & ~((gsize) (a) - 1))

/* What framehub knows about a GstMemory, as qdata on it. */
typedef struct {
  int share_fd;       /* fd sent to consumers */
  int owns_fd;        /* share_fd is ours to close (a read-only reopen) */
  int kind;
  uint64_t dev, ino, fd_size;
  uintptr_t observer; /* cgo.Handle told when the memory is freed; 0: none */
  /* NVMM memory (build tag jetson, fhgst_nvmm.c): the memory's bytes are an
   * NvBufSurface; share_fd is its DMA-BUF, which holds the planes below. */
  int nvmm;
  uint64_t nvmm_size;
  int n_planes;
  uint64_t plane_offset[4];
  int32_t plane_stride[4];
  uint64_t plane_size[4];
} FhTag;

/* fh_nvmm_tag fills t's fd, kind-independent fields and planes when mem is
 * Jetson NVMM memory it can adopt, and returns 1; otherwise 0 (always
 * without the jetson build tag). */
int fh_nvmm_tag (GstMemory * mem, FhTag * t);

FhTag *fh_tag_get (GstMemory * mem);
FhTag *fh_tag_foreign (GstMemory * mem);

GType fh_memfd_pool_get_type (void);
#define FH_TYPE_MEMFD_POOL (fh_memfd_pool_get_type ())
#define FH_IS_MEMFD_POOL(o) (G_TYPE_CHECK_INSTANCE_TYPE ((o), FH_TYPE_MEMFD_POOL))
GstBufferPool *fh_memfd_pool_new (guint min, guint max);
int fh_memfd_pool_outstanding (GstBufferPool * pool);
FhDeferred *fh_memfd_pool_deferred (GstBufferPool * pool);

#endif
