/* C helpers of package internal/gst: what go-gst v1.4.0 does not offer.
 * Every function documents who owns what it returns. */
#ifndef FRAMEHUB_FHGST_H
#define FRAMEHUB_FHGST_H

#include <stdint.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#define FH_MAX_MEMS 4

/* Kinds of shareable memory, equal to ipc.Kind values. */
#define FH_KIND_NONE 0
#define FH_KIND_MEMFD 1
#define FH_KIND_DMABUF 2

typedef struct {
  int share_fd;     /* fd to send to consumers, borrowed from the memory */
  int fresh;        /* the memory was registered with the observer by this call */
  uint64_t dev, ino;
  uint64_t fd_size; /* bytes mappable from share_fd */
  uint64_t offset;  /* offset in the fd of the memory's first byte */
  uint64_t size;    /* bytes of the memory */
} FhMemDesc;

typedef struct {
  int mem;          /* index into mems */
  uint64_t offset;  /* offset in the fd of mems[mem] */
  int32_t stride;
  uint64_t size;
} FhPlaneDesc;

typedef struct {
  int kind;         /* FH_KIND_*; NONE: no fd, or memories not shareable as one surface */
  int n_mems;
  FhMemDesc mems[FH_MAX_MEMS];
  int n_planes;
  FhPlaneDesc planes[GST_VIDEO_MAX_PLANES];
  int64_t pts, dts, dur; /* -1 when unknown */
  int64_t running;       /* running time of pts, -1 when unknown */
  int delta;             /* GST_BUFFER_FLAG_DELTA_UNIT */
  int ours;              /* from an FhMemfdPool */
  int pool_outstanding;  /* ours: buffers of the pool out now, this one included */
  int pool_max;          /* max buffers of the buffer's pool; 0: unknown or unlimited */
  uintptr_t pool;        /* the buffer's pool, 0 if none */
} FhBufDesc;

/* Registration of the memory-freed observer (a cgo.Handle value). */
void fh_init (void);

/* Pad probe answering the ALLOCATION query on pad with a new FhMemfdPool. */
gulong fh_install_alloc_probe (GstElement * sink, guint min, guint max);
void fh_remove_probe (GstElement * sink, gulong id);

/* Parse a launch description with fatal errors. Returns a ref-sunk pipeline
 * owned by the caller, or NULL with *errmsg (g_free) and *missing
 * (g_strfreev) set. */
GstElement *fh_parse_launch (const char *desc, char **errmsg, char ***missing);
GstElement *fh_bin_get (GstElement * bin, const char *name);
void fh_unref (gpointer obj);
void fh_run_dispose (gpointer obj);
int64_t fh_mono_base (GstElement * pipeline);

/* Samples: pulled samples are owned by the caller (fh_sample_unref). */
typedef struct _FhWatch FhWatch;
FhWatch *fh_watch_new (GstElement * appsink, int efd);
void fh_watch_close (FhWatch * w);
GstSample *fh_watch_pull (FhWatch * w);
void fh_watch_set_idle (FhWatch * w, GstSample * last);
guint64 fh_watch_take_unwatched (FhWatch * w);
int fh_appsink_is_eos (GstElement * appsink);
void fh_sample_unref (GstSample * s);
GstBuffer *fh_sample_buffer_ref (GstSample * s);
void fh_buffer_unref (GstBuffer * b);
int fh_sample_caps_changed (GstSample * s, GstCaps ** last);
GstVideoInfo *fh_sample_video_info (GstSample * s);
int fh_sample_timing (GstSample * s, FhBufDesc * d);
int fh_describe (GstSample * s, const GstVideoInfo * vi, uintptr_t observer,
    FhBufDesc * d);
int fh_copy_frame (GstSample * s, const GstVideoInfo * vi, guint8 * dst,
    gsize dst_len, const uint32_t * offsets, const uint32_t * strides,
    int n_planes);
gsize fh_extract (GstSample * s, guint8 * dst, gsize dst_len);
int fh_appsrc_push (GstElement * appsrc, GstSample * s);
int fh_appsrc_push_bytes (GstElement * appsrc, const guint8 * data,
    gsize len, int64_t pts, int64_t dts, int64_t dur, int delta);
int fh_appsrc_eos (GstElement * appsrc);
guint64 fh_appsrc_queued (GstElement * appsrc);
int fh_force_key_unit (GstElement * encoder);
int fh_request_key_unit (GstElement * sink);
const char *fh_sample_media_type (GstSample * s);
void fh_sample_geometry (GstSample * s, int *w, int *h, int *fps_n, int *fps_d);
typedef struct {
  GstMemory *mem;               /* the memory mapped, referenced */
  GstMapInfo info;
  guint8 *y;                    /* plane 0 */
  gsize y_len;                  /* bytes from y to the end of the memory */
  gint stride;
} FhPlaneMap;
FhPlaneMap *fh_plane0_map_write (GstSample * s, const GstVideoInfo * vi);
void fh_plane_unmap (FhPlaneMap * m);

/* Test support. */
GstBuffer *fh_test_wrap_dmabuf (int fd, gsize size, gsize offset);
GstSample *fh_test_sample (GstBuffer * b, const char *caps);
int fh_test_refcount (GstBuffer * b);
GstBufferPool *fh_test_pool (const char *caps, guint min, guint max);
GstBuffer *fh_test_acquire (GstBufferPool * pool);
void fh_test_pool_free (GstBufferPool * pool);
GstBuffer *fh_test_system_buffer (const void *data, gsize size);

#endif
