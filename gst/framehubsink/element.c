/* framehubsink: a GstBin holding one appsink, behind a ghost sink pad.
 *
 * The appsink's sink pad answers the ALLOCATION query with framehub's memfd
 * pool (installed from Go, internal/gst), so upstream elements that take a
 * proposed pool write their frames straight into memory consumers map.
 * READY→PAUSED starts the Go side before the appsink prerolls (it must
 * watch the appsink and answer the query before the first buffer);
 * PAUSED→READY stops it after the appsink's streaming thread ended. */
#include "element.h"

#include <string.h>

#include "_cgo_export.h"

GST_DEBUG_CATEGORY_STATIC (gst_framehub_sink_debug);
#define GST_CAT_DEFAULT gst_framehub_sink_debug

#define GST_TYPE_FRAMEHUB_SINK (gst_framehub_sink_get_type ())
G_DECLARE_FINAL_TYPE (GstFramehubSink, gst_framehub_sink, GST, FRAMEHUB_SINK,
    GstBin)

struct _GstFramehubSink {
  GstBin parent;
  GstElement *appsink;          /* child of the bin */
  /* Properties, under the object lock. */
  gchar *socket, *stream;
  guint pool_min, pool_max, pool_reserve, max_in_flight, max_hold_ms;
  guint h264_pool_max, h264_slab_size, h264_replay_ms;
  gboolean stamp;
  /* The Go side of this element (a cgo.Handle), 0 until the first start;
   * state changes only. */
  uintptr_t go;
};

/* get_hub returns the Go side of all framehubsink elements of the
 * process: its producer servers, one per socket (a cgo.Handle made at the
 * first start). Not at class_init: that runs with GType's class lock held,
 * and the Go runtime, still initialising its packages in a thread of its
 * own when the plugin was just loaded, takes the same lock (go-glib
 * registers types), while the call into Go waits for it: a deadlock. */
static uintptr_t
get_hub (void)
{
  static gsize hub;
  if (g_once_init_enter (&hub))
    g_once_init_leave (&hub, (gsize) fhsHubNew ());
  return (uintptr_t) hub;
}

enum {
  PROP_0, PROP_SOCKET, PROP_STREAM, PROP_POOL_MIN, PROP_POOL_MAX,
  PROP_POOL_RESERVE, PROP_MAX_IN_FLIGHT, PROP_MAX_HOLD, PROP_H264_POOL_MAX,
  PROP_H264_SLAB_SIZE, PROP_H264_REPLAY, PROP_STAMP, PROP_SYNC, PROP_STATS
};

#define SINK_CAPS "video/x-raw, format = (string) NV12; " \
  "video/x-h264, stream-format = (string) byte-stream, alignment = (string) au"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (SINK_CAPS));

G_DEFINE_TYPE (GstFramehubSink, gst_framehub_sink, GST_TYPE_BIN);

void
fhs_post_error (GstElement * element, const char *text)
{
  GST_ELEMENT_ERROR (element, RESOURCE, WRITE,
      ("framehubsink cannot publish what it receives."), ("%s", text));
}

int
fhs_log_enabled (int level)
{
  return level <= (int) gst_debug_category_get_threshold
      (gst_framehub_sink_debug);
}

void
fhs_log (int level, const char *text)
{
  gst_debug_log (gst_framehub_sink_debug, (GstDebugLevel) level, "go", "",
      0, NULL, "%s", text);
}

static GstStateChangeReturn
gst_framehub_sink_change_state (GstElement * element,
    GstStateChange transition)
{
  GstFramehubSink *self = GST_FRAMEHUB_SINK (element);
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    FhsSettings s;
    char err[1024] = "";
    int ok;

    GST_OBJECT_LOCK (self);
    s.socket = g_strdup (self->socket);
    s.stream = g_strdup (self->stream);
    s.pool_min = self->pool_min;
    s.pool_max = self->pool_max;
    s.pool_reserve = self->pool_reserve;
    s.max_in_flight = self->max_in_flight;
    s.max_hold_ms = self->max_hold_ms;
    s.h264_pool_max = self->h264_pool_max;
    s.h264_slab_size = self->h264_slab_size;
    s.h264_replay_ms = self->h264_replay_ms;
    s.stamp = self->stamp;
    GST_OBJECT_UNLOCK (self);
    ok = fhsStart (get_hub (), &self->go, element, self->appsink, &s, err,
        sizeof err);
    g_free ((gchar *) s.socket);
    g_free ((gchar *) s.stream);
    if (!ok) {
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
          ("Could not start the framehub producer."), ("%s", err));
      return GST_STATE_CHANGE_FAILURE;
    }
  }
  ret = GST_ELEMENT_CLASS (gst_framehub_sink_parent_class)->change_state
      (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY
      || (transition == GST_STATE_CHANGE_READY_TO_PAUSED
          && ret == GST_STATE_CHANGE_FAILURE))
    fhsStop (self->go);
  return ret;
}

static void
gst_framehub_sink_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstFramehubSink *self = GST_FRAMEHUB_SINK (object);

  if (prop_id == PROP_SYNC) {
    g_object_set_property (G_OBJECT (self->appsink), "sync", value);
    return;
  }
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_SOCKET:
      g_free (self->socket);
      self->socket = g_value_dup_string (value);
      break;
    case PROP_STREAM:
      g_free (self->stream);
      self->stream = g_value_dup_string (value);
      break;
    case PROP_POOL_MIN:
      self->pool_min = g_value_get_uint (value);
      break;
    case PROP_POOL_MAX:
      self->pool_max = g_value_get_uint (value);
      break;
    case PROP_POOL_RESERVE:
      self->pool_reserve = g_value_get_uint (value);
      break;
    case PROP_MAX_IN_FLIGHT:
      self->max_in_flight = g_value_get_uint (value);
      break;
    case PROP_MAX_HOLD:
      self->max_hold_ms = g_value_get_uint (value);
      break;
    case PROP_H264_POOL_MAX:
      self->h264_pool_max = g_value_get_uint (value);
      break;
    case PROP_H264_SLAB_SIZE:
      self->h264_slab_size = g_value_get_uint (value);
      break;
    case PROP_H264_REPLAY:
      self->h264_replay_ms = g_value_get_uint (value);
      break;
    case PROP_STAMP:
      self->stamp = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
  GST_OBJECT_UNLOCK (self);
}

static GstStructure *
stats (GstFramehubSink * self)
{
  FhsStats st;

  memset (&st, 0, sizeof st);
  fhsStats (self->go, &st);
  return gst_structure_new ("framehubsink-stats",
      "stream", G_TYPE_STRING, st.stream,
      "frames", G_TYPE_UINT64, (guint64) st.frames,
      "zero-copy", G_TYPE_UINT64, (guint64) st.zero_copy,
      "adopted", G_TYPE_UINT64, (guint64) st.adopted,
      "copied", G_TYPE_UINT64, (guint64) st.copied,
      "dropped", G_TYPE_UINT64, (guint64) st.dropped,
      "stamped", G_TYPE_UINT64, (guint64) st.stamped,
      "unstamped", G_TYPE_UINT64, (guint64) st.unstamped,
      "held-buffers", G_TYPE_UINT64, (guint64) st.held,
      "unwatched", G_TYPE_UINT64, (guint64) st.unwatched,
      "consumers", G_TYPE_INT, st.consumers, NULL);
}

static void
gst_framehub_sink_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstFramehubSink *self = GST_FRAMEHUB_SINK (object);

  switch (prop_id) {
    case PROP_SYNC:
      g_object_get_property (G_OBJECT (self->appsink), "sync", value);
      return;
    case PROP_STATS:
      /* self->go changes only in state changes, which GStreamer
       * serialises with property reads of the application's thread. */
      g_value_take_boxed (value, stats (self));
      return;
  }
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_SOCKET:
      g_value_set_string (value, self->socket);
      break;
    case PROP_STREAM:
      g_value_set_string (value, self->stream);
      break;
    case PROP_POOL_MIN:
      g_value_set_uint (value, self->pool_min);
      break;
    case PROP_POOL_MAX:
      g_value_set_uint (value, self->pool_max);
      break;
    case PROP_POOL_RESERVE:
      g_value_set_uint (value, self->pool_reserve);
      break;
    case PROP_MAX_IN_FLIGHT:
      g_value_set_uint (value, self->max_in_flight);
      break;
    case PROP_MAX_HOLD:
      g_value_set_uint (value, self->max_hold_ms);
      break;
    case PROP_H264_POOL_MAX:
      g_value_set_uint (value, self->h264_pool_max);
      break;
    case PROP_H264_SLAB_SIZE:
      g_value_set_uint (value, self->h264_slab_size);
      break;
    case PROP_H264_REPLAY:
      g_value_set_uint (value, self->h264_replay_ms);
      break;
    case PROP_STAMP:
      g_value_set_boolean (value, self->stamp);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_framehub_sink_init (GstFramehubSink * self)
{
  GstPad *target, *ghost;
  GstCaps *caps = gst_caps_from_string (SINK_CAPS);

  self->pool_min = 4;
  self->pool_max = 32;
  self->pool_reserve = 3;
  self->max_in_flight = 8;
  self->max_hold_ms = 60000;
  self->h264_pool_max = 64;
  self->h264_slab_size = 2 << 20;
  self->h264_replay_ms = 30000;
  /* One sample queued at most: a Go side that falls behind holds the
   * streaming thread back instead of queueing frames. No last sample: it
   * would keep a pool buffer, and a lease-free surface, busy. */
  self->appsink = gst_element_factory_make ("appsink", "appsink");
  g_object_set (self->appsink, "caps", caps, "max-buffers", 1, "drop", FALSE,
      "enable-last-sample", FALSE, "emit-signals", FALSE, NULL);
  gst_caps_unref (caps);
  gst_bin_add (GST_BIN (self), self->appsink);
  target = gst_element_get_static_pad (self->appsink, "sink");
  ghost = gst_ghost_pad_new_from_template ("sink", target,
      gst_static_pad_template_get (&sink_template));
  gst_object_unref (target);
  gst_element_add_pad (GST_ELEMENT (self), ghost);
}

static void
gst_framehub_sink_finalize (GObject * object)
{
  GstFramehubSink *self = GST_FRAMEHUB_SINK (object);

  if (self->go)
    fhsFree (self->go);
  g_free (self->socket);
  g_free (self->stream);
  G_OBJECT_CLASS (gst_framehub_sink_parent_class)->finalize (object);
}

static void
gst_framehub_sink_class_init (GstFramehubSinkClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_READY;

  GST_DEBUG_CATEGORY_INIT (gst_framehub_sink_debug, "framehubsink", 0,
      "framehub producer sink");

  gobject_class->set_property = gst_framehub_sink_set_property;
  gobject_class->get_property = gst_framehub_sink_get_property;
  gobject_class->finalize = gst_framehub_sink_finalize;
  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_framehub_sink_change_state);

  g_object_class_install_property (gobject_class, PROP_SOCKET,
      g_param_spec_string ("socket", "Socket",
          "The socket consumers connect to: a path (its directory is created "
          "mode 0700, or must be this uid's and not writable by others), or "
          "@name for the abstract namespace. Unset: $FRAMEHUB_SOCKET, else "
          "/run/framehub/framehub.sock for root, else "
          "$XDG_RUNTIME_DIR/framehub/framehub.sock. framehubsink elements "
          "of one process with the same socket share one producer: each "
          "serves its own stream on it", NULL, rw));
  g_object_class_install_property (gobject_class, PROP_STREAM,
      g_param_spec_string ("stream", "Stream",
          "The stream's name. Unset: \"raw\" for raw video (NV12), \"h264\" "
          "for H.264. The stream is created at the first buffer, by its "
          "caps; it lives as long as the producer (the last framehubsink on "
          "the socket stops)", NULL, rw));
  g_object_class_install_property (gobject_class, PROP_POOL_MIN,
      g_param_spec_uint ("pool-min", "Pool min",
          "Raw video: buffers allocated up front in the pool of sealed memfds "
          "that framehubsink proposes upstream (ALLOCATION query); upstream "
          "elements that take it write their frames straight into memory "
          "consumers map, with no copy", 0, 1024, 4, rw));
  g_object_class_install_property (gobject_class, PROP_POOL_MAX,
      g_param_spec_uint ("pool-max", "Pool max",
          "Raw video: most buffers of that pool (and of the copy pool of "
          "frames that arrive in other memory). Frames leased to consumers "
          "count against it; when leasing a frame would leave upstream no "
          "buffer, the frame is dropped (\"dropped\" in stats), never "
          "overwritten", 2, 1024, 32, rw));
  g_object_class_install_property (gobject_class, PROP_POOL_RESERVE,
      g_param_spec_uint ("pool-reserve", "Pool reserve",
          "Raw video: buffers of pool-max the pipeline keeps for itself (the "
          "one being filled, those queued upstream), never promised to "
          "consumers (admission control)", 1, 1023, 3, rw));
  g_object_class_install_property (gobject_class, PROP_MAX_IN_FLIGHT,
      g_param_spec_uint ("max-in-flight", "Max in flight",
          "Largest budget (frames held at once) a consumer may ask for; "
          "admission control grants less when the pool cannot back it. A "
          "setting of the producer: the first framehubsink to start on a "
          "socket sets it", 1, 1024, 8, rw));
  g_object_class_install_property (gobject_class, PROP_MAX_HOLD,
      g_param_spec_uint ("max-hold", "Max hold",
          "Longest lease deadline, in milliseconds, a consumer may ask for "
          "(the default one is 2000, or this if less). A setting of the "
          "producer: the first framehubsink to start on a socket sets it",
          1, G_MAXUINT32, 60000, rw));
  g_object_class_install_property (gobject_class, PROP_H264_POOL_MAX,
      g_param_spec_uint ("h264-pool-max", "H.264 pool max",
          "H.264: most slabs (memfds into which consecutive access units are "
          "packed)", 1, 65536, 64, rw));
  g_object_class_install_property (gobject_class, PROP_H264_SLAB_SIZE,
      g_param_spec_uint ("h264-slab-size", "H.264 slab size",
          "H.264: bytes of one slab, also the largest access unit accepted",
          4096, 1 << 30, 2 << 20, rw));
  g_object_class_install_property (gobject_class, PROP_H264_REPLAY,
      g_param_spec_uint ("h264-replay", "H.264 replay",
          "H.264: milliseconds of access units kept for consumers that ask to "
          "replay from a capture time (a restarted recorder); 0 keeps none",
          0, G_MAXUINT32, 30000, rw));
  g_object_class_install_property (gobject_class, PROP_STAMP,
      g_param_spec_boolean ("stamp", "Stamp",
          "Raw video: write framehub's test stamp (PROTOCOL.md §9: the "
          "frame's sequence number, capture time and a CRC-32C) into the top "
          "8 rows of every frame's Y plane before consumers see it, so that "
          "they can verify the pixels they map belong to the frame they were "
          "given. It overwrites those rows. Frames in framehub's memfd pool "
          "and copied frames are stamped; adopted DMA-BUFs are not "
          "(\"unstamped\" in stats)",
          FALSE, rw));
  g_object_class_install_property (gobject_class, PROP_SYNC,
      g_param_spec_boolean ("sync", "Sync",
          "Publish each frame at its running time on the pipeline clock "
          "(true, GStreamer's sink default: a non-live source plays at its "
          "rate) or as soon as it arrives (false: a live source then "
          "publishes without the latency wait)", TRUE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "Counters of the stream: stream (its name), frames (published), "
          "zero-copy (raw frames upstream wrote into framehub's memfds), "
          "adopted (DMA-BUF frames shared as they are), copied (frames in "
          "other memory, copied once), dropped (every buffer held, or an "
          "access unit larger than a slab), stamped, unstamped, held-buffers "
          "(buffers leased to consumers now), consumers (subscribed now)",
          GST_TYPE_STRUCTURE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_set_static_metadata (element_class,
      "framehub producer sink", "Sink/Video",
      "Makes the pipeline a framehub producer: consumer processes subscribe "
      "on a Unix socket and get every frame as a lease on fd-backed memory "
      "(memfd or DMA-BUF), without a copy when upstream writes into the "
      "proposed memfd pool",
      "framehub");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
}

/* The plugin's version: that of the wire protocol it speaks. */
#define FRAMEHUB_VERSION "1.1"
#define PACKAGE "framehub"

static gboolean
plugin_init (GstPlugin * plugin)
{
  return gst_element_register (plugin, "framehubsink", GST_RANK_NONE,
      GST_TYPE_FRAMEHUB_SINK);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, framehubsink,
    "framehub producer: any pipeline serves its frames to framehub consumers",
    plugin_init, FRAMEHUB_VERSION, "unknown", "framehub",
    "https://github.com/framehub/framehub")
