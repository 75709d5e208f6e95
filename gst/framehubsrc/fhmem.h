/* GstMemory for framehub frames: fd memory (DMA-BUF memory for dmabuf
 * surfaces) that wraps a region of a surface the producer announced, holds
 * the frame's lease for as long as it lives, and maps through the
 * surface's one read-only mapping. */
#ifndef FRAMEHUB_FHMEM_H
#define FRAMEHUB_FHMEM_H

#include <gst/gst.h>

#include "fhconn.h"

/* fh_allocator_new returns a new allocator for memfd surfaces (a
 * GstFdAllocator: gst_is_fd_memory is true of its memories), or, with
 * dmabuf, for dmabuf surfaces (gst_is_dmabuf_memory is true too). Unref
 * it; memories keep their allocator alive. */
GstAllocator *fh_allocator_new (gboolean dmabuf);

/* fh_memory_new returns a memory of bytes [offset, offset + size) of fd
 * fd_index of the lease's surface, flagged read-only (a writable mapping
 * gets a copy, which GStreamer makes). The memory takes a reference to the
 * lease and drops it when it is freed, so the lease ends when the last
 * memory of the frame, and the last share of one (gst_memory_share keeps
 * its parent alive), is gone: after tees, queues and buffer copies alike.
 * The caller checked that the region lies within the surface's fd. */
GstMemory *fh_memory_new (GstAllocator * alloc, FhLease * lease, int fd_index,
    gsize offset, gsize size);

#endif
