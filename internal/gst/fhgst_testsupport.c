/* Test support of package internal/gst: buffers shaped like those of real
 * sources (see testsupport.go). */
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


GstBuffer *
fh_test_wrap_dmabuf (int fd, gsize size, gsize offset)
{
  GstAllocator *alloc = gst_dmabuf_allocator_new ();
  int dupfd = fcntl (fd, F_DUPFD_CLOEXEC, 0);
  GstMemory *mem;
  GstBuffer *buf;

  if (dupfd < 0) {
    gst_object_unref (alloc);
    return NULL;
  }
  mem = gst_dmabuf_allocator_alloc (alloc, dupfd, size);
  gst_object_unref (alloc);
  if (mem == NULL) {
    close (dupfd);
    return NULL;
  }
  if (offset)
    gst_memory_resize (mem, (gssize) offset, size - offset);
  buf = gst_buffer_new ();
  gst_buffer_append_memory (buf, mem);
  return buf;
}

GstSample *
fh_test_sample (GstBuffer * b, const char *caps)
{
  GstCaps *c = gst_caps_from_string (caps);
  GstSample *s = gst_sample_new (b, c, NULL, NULL);
  if (c)
    gst_caps_unref (c);
  return s;
}

int
fh_test_refcount (GstBuffer * b)
{
  return GST_MINI_OBJECT_REFCOUNT_VALUE (b);
}

GstBufferPool *
fh_test_pool (const char *caps, guint min, guint max)
{
  GstBufferPool *pool = fh_memfd_pool_new (min, max);
  GstCaps *c = gst_caps_from_string (caps);
  GstStructure *conf = gst_buffer_pool_get_config (pool);
  gst_buffer_pool_config_set_params (conf, c, 0, min, max);
  gst_buffer_pool_config_add_option (conf, GST_BUFFER_POOL_OPTION_VIDEO_META);
  gst_caps_unref (c);
  if (!gst_buffer_pool_set_config (pool, conf)
      || !gst_buffer_pool_set_active (pool, TRUE)) {
    gst_object_unref (pool);
    return NULL;
  }
  return pool;
}

GstBuffer *
fh_test_acquire (GstBufferPool * pool)
{
  GstBuffer *b = NULL;
  GstBufferPoolAcquireParams params = {.flags =
        GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT };
  if (gst_buffer_pool_acquire_buffer (pool, &b, &params) != GST_FLOW_OK)
    return NULL;
  return b;
}

void
fh_test_pool_free (GstBufferPool * pool)
{
  gst_buffer_pool_set_active (pool, FALSE);
  gst_object_unref (pool);
}

GstBuffer *
fh_test_system_buffer (const void *data, gsize size)
{
  return gst_buffer_new_memdup (data, size);
}
