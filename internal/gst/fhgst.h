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

/* References that Go gives back without a cgo call (fhgst_pool.c): every
 * FhMemfdPool has one. Go pushes a GstMiniObject (a sample or a buffer of
 * the pool): it sets FH_DEFER_PUSHING in tail (one pusher at a time),
 * writes slots[count % FH_DEFER_CAP], then adds one to the count and
 * clears FH_DEFER_PUSHING in one atomic step, after which it never touches
 * the ring again (the pool may be gone once the reference is dropped). It
 * pushes nothing while FH_DEFER_BLOCKED is set or the ring is full: it
 * unrefs through cgo instead. C drains from head, under drain_lock. The
 * pool drains before each acquire and blocks the ring while an acquire
 * waits for a buffer and while the pool is flushing, so that no buffer
 * waits in the ring for a thread that waits for it: after setting the flag
 * it lets a push in progress finish, then drains. */
#define FH_DEFER_CAP 64
#define FH_DEFER_BLOCKED (((uint64_t) 1) << 63)
#define FH_DEFER_PUSHING (((uint64_t) 1) << 62)
#define FH_DEFER_COUNT(t) ((t) & ~(FH_DEFER_BLOCKED | FH_DEFER_PUSHING))
typedef struct {
  uint64_t tail;                /* atomic: pushed count | FH_DEFER_BLOCKED | FH_DEFER_PUSHING */
  uint64_t head;                /* atomic: drained count */
  uint32_t flushing;            /* under drain_lock */
  uint32_t waiting;             /* under drain_lock: acquires waiting */
  void *slots[FH_DEFER_CAP];    /* GstMiniObject *; written before the count */
  GMutex drain_lock;
} FhDeferred;
void fh_deferred_drain (FhDeferred * d);
void fh_mini_object_unref (void *obj);

/* Samples: pulled samples are owned by the caller (fh_sample_unref).
 *
 * A watch (SampleWatch in gst.go) whose Go side called fh_watch_prepare is
 * in ring mode: the streaming thread pulls each sample itself into ready
 * (a single-producer single-consumer ring Go reads without a cgo call),
 * and describes those of an FhMemfdPool whose caps are the prepared ones
 * (FhReady.buffer set). Go takes ready[head % FH_READY_CAP] while head !=
 * tail and stores head + 1; while backlog is set, samples wait in held or
 * the appsink and fh_watch_refill moves them. */
#define FH_READY_CAP 2
typedef struct {
  GstSample *sample;            /* owned by the slot until Go takes it */
  GstBuffer *buffer;            /* prepared: a second reference to the sample's buffer; NULL: a plain sample */
  FhDeferred *deferred;         /* prepared: where Go gives both references back */
  uint64_t gen;                 /* prepared: the fh_watch_prepare call it was prepared under */
  FhBufDesc desc;               /* prepared: the buffer described */
} FhReady;

typedef struct _FhWatch
{
  GstElement *appsink;          /* borrowed: the run holds the pipeline */
  int efd;                      /* borrowed: the Go side owns and closes it */
  GMutex lock;                  /* guards the fields below, except the atomic ones */
  gboolean idle;
  GstCaps *caps;                /* while idle: the caps a sample may have to be dropped */
  GstSample *held;              /* a sample that ended idling, for Go */
  guint64 unwatched;            /* atomic: dropped, not yet taken by Go */
  guint since_sync;
  int eos;                      /* atomic: the EOS callback ran */
  /* Ring mode. */
  int ring;
  GstCaps *prep_caps;           /* samples with these caps are prepared; NULL: none */
  GstVideoInfo *prep_vi;
  uintptr_t prep_observer;
  uint64_t prep_gen;
  int backlog;                  /* atomic: samples wait in held or the appsink */
  uint64_t ready_head;          /* atomic: taken by Go */
  uint64_t ready_tail;          /* atomic: filled by C */
  FhReady ready[FH_READY_CAP];
} FhWatch;
FhWatch *fh_watch_new (GstElement * appsink, int efd);
void fh_watch_close (FhWatch * w);
GstSample *fh_watch_pull (FhWatch * w);
uint64_t fh_watch_prepare (FhWatch * w, GstSample * s, const GstVideoInfo * vi,
    uintptr_t observer);
void fh_watch_refill (FhWatch * w);
void fh_watch_set_idle (FhWatch * w, GstSample * last);
int fh_appsink_is_eos (GstElement * appsink);

/* Bus watch (BusWatch in gst.go): a sync handler that moves each message
 * of the watched types into the watch's own queue, then adds to efd, and
 * drops the others. The bus owns the watch: fh_bus_unwatch frees it with
 * the messages still queued. fh_bus_watch_pop returns the oldest queued
 * message (the caller owns it), or NULL. */
typedef struct _FhBusWatch FhBusWatch;
FhBusWatch *fh_bus_watch (GstElement * pipeline, int efd, guint types);
GstMessage *fh_bus_watch_pop (FhBusWatch * w);
void fh_bus_unwatch (GstElement * pipeline);
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
