/* framehubsrc: a live GStreamer source of one framehub stream. */
#ifndef FRAMEHUB_GSTFRAMEHUBSRC_H
#define FRAMEHUB_GSTFRAMEHUBSRC_H

#include <gst/gst.h>
#include <gst/base/gstpushsrc.h>
#include <gst/video/video.h>

#include "fhconn.h"
#include "fhproto.h"

G_BEGIN_DECLS

#define GST_TYPE_FRAMEHUB_SRC (gst_framehub_src_get_type ())
G_DECLARE_FINAL_TYPE (GstFramehubSrc, gst_framehub_src, GST, FRAMEHUB_SRC,
    GstPushSrc)

/* Delivery policy of the subscription (PROTOCOL.md §7). */
typedef enum {
  GST_FRAMEHUB_SRC_POLICY_QUEUE,
  GST_FRAMEHUB_SRC_POLICY_LATEST
} GstFramehubSrcPolicy;

struct _GstFramehubSrc {
  GstPushSrc parent;

  /* Properties, under the object lock. */
  gchar *socket;
  gchar *stream;
  gchar *consumer_name;
  guint max_in_flight;
  guint max_hold_ms;
  GstFramehubSrcPolicy policy;
  gboolean reconnect;
  gboolean wait_keyframe;

  /* The streaming thread's (and start/stop's). */
  FhConn *conn;                 /* NULL while disconnected */
  FhWelcome welcome;            /* of the current or last connection */
  FhCaps caps;                  /* current caps */
  gboolean have_caps, caps_changed;
  gboolean encoded;             /* caps without planes: H.264 */
  GstVideoInfo vinfo;           /* raw caps */
  GHashTable *surfaces;         /* id → FhSurface* */
  FhMsg *msg;
  uint8_t *rbuf;
  int wakefd;                   /* eventfd: unlock () */
  gboolean discont;             /* the next buffer follows a gap */
  gboolean waiting_key;         /* encoded: discarding until a keyframe */
  gboolean key_requested;       /* RequestKeyframe sent in this wait */
  gint64 retry_ns;              /* reconnect back-off */
  gboolean connected_once;
  GstAllocator *fd_alloc, *dmabuf_alloc;
  GstClock *clock;              /* the clock clock_mono was found for */
  gboolean clock_mono;          /* it is CLOCK_MONOTONIC itself */
  gboolean copy_warned;

  /* Set by decide_allocation (streaming thread), read by create. */
  gboolean downstream_meta;

  /* Counters (atomic or the streaming thread's; read by "stats"). */
  FhCounters *ctr;
  guint64 frames, dropped, disconts, copies, reconnects, skipped_key;
};

G_END_DECLS

#endif
