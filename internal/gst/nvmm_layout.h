/* nvmm_layout.h: the part of NVIDIA's NvBufSurface (nvbufsurface.h, JetPack
 * 5 and 6, "Copyright (c) 2019-2023") that framehub reads to adopt
 * memory:NVMM buffers, written down field by field for LP64 (aarch64) so
 * that the build does not need NVIDIA's headers. Only the build tag jetson
 * compiles code that uses it (fhgst_nvmm.c); it has NOT been run on Jetson
 * hardware. The static assertions pin the offsets the public header implies.
 *
 * What a GStreamer NVMM buffer is: one GstMemory (allocator mem_type
 * "nvmm") whose mapped bytes are an NvBufSurface; for memType
 * NVBUF_MEM_SURFACE_ARRAY (Jetson) surfaceList[i].bufferDesc is the
 * buffer's DMA-BUF fd and planeParams gives each plane's offset and pitch
 * in it.
 */
#ifndef FH_NVMM_LAYOUT_H
#define FH_NVMM_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define FH_NVBUF_MAX_PLANES 4
#define FH_NVBUF_PADDING 4      /* STRUCTURE_PADDING */

/* NvBufSurfaceMemType values. */
#define FH_NVBUF_MEM_SURFACE_ARRAY 4
#define FH_NVBUF_MEM_HANDLE 5
/* NvBufSurfaceLayout values. */
#define FH_NVBUF_LAYOUT_PITCH 0
/* NvBufSurfaceColorFormat values framehub adopts. */
#define FH_NVBUF_COLOR_FORMAT_NV12 6
#define FH_NVBUF_COLOR_FORMAT_NV12_ER 7

/* NvBufSurfacePlaneParams: 232 bytes. */
typedef struct {
  uint32_t num_planes;
  uint32_t width[FH_NVBUF_MAX_PLANES];
  uint32_t height[FH_NVBUF_MAX_PLANES];
  uint32_t pitch[FH_NVBUF_MAX_PLANES];
  uint32_t offset[FH_NVBUF_MAX_PLANES];
  uint32_t psize[FH_NVBUF_MAX_PLANES];
  uint32_t bytesPerPix[FH_NVBUF_MAX_PLANES];
  void *reserved[FH_NVBUF_PADDING * FH_NVBUF_MAX_PLANES];
} FhNvBufSurfacePlaneParams;

/* NvBufSurfaceParams: 384 bytes, one per buffer of a batch. */
typedef struct {
  uint32_t width;
  uint32_t height;
  uint32_t pitch;
  int32_t colorFormat;          /* NvBufSurfaceColorFormat */
  int32_t layout;               /* NvBufSurfaceLayout */
  uint64_t bufferDesc;          /* the DMA-BUF fd (SURFACE_ARRAY, HANDLE) */
  uint32_t dataSize;            /* bytes allocated */
  void *dataPtr;
  FhNvBufSurfacePlaneParams planeParams;
  void *mappedAddr[FH_NVBUF_MAX_PLANES + 1 + FH_NVBUF_PADDING];  /* NvBufSurfaceMappedAddr */
  void *paramex;                /* NvBufSurfaceParamsEx * */
  void *reserved[FH_NVBUF_PADDING - 1];
} FhNvBufSurfaceParams;

/* NvBufSurface: 64 bytes. */
typedef struct {
  uint32_t gpuId;
  uint32_t batchSize;
  uint32_t numFilled;
  _Bool isContiguous;
  int32_t memType;              /* NvBufSurfaceMemType */
  FhNvBufSurfaceParams *surfaceList;
  void *reserved[FH_NVBUF_PADDING];
} FhNvBufSurface;

#if defined(__LP64__)
_Static_assert (sizeof (FhNvBufSurfacePlaneParams) == 232, "NvBufSurfacePlaneParams layout");
_Static_assert (offsetof (FhNvBufSurfaceParams, bufferDesc) == 24, "NvBufSurfaceParams.bufferDesc");
_Static_assert (offsetof (FhNvBufSurfaceParams, dataSize) == 32, "NvBufSurfaceParams.dataSize");
_Static_assert (offsetof (FhNvBufSurfaceParams, planeParams) == 48, "NvBufSurfaceParams.planeParams");
_Static_assert (offsetof (FhNvBufSurfaceParams, paramex) == 352, "NvBufSurfaceParams.paramex");
_Static_assert (sizeof (FhNvBufSurfaceParams) == 384, "NvBufSurfaceParams size");
_Static_assert (offsetof (FhNvBufSurface, memType) == 16, "NvBufSurface.memType");
_Static_assert (offsetof (FhNvBufSurface, surfaceList) == 24, "NvBufSurface.surfaceList");
_Static_assert (sizeof (FhNvBufSurface) == 64, "NvBufSurface size");
#endif

#endif /* FH_NVMM_LAYOUT_H */
