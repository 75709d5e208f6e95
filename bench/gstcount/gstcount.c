/* gstcount runs a GStreamer pipeline, like gst-launch-1.0, and counts the
 * buffers that reach its sink: the peer benchmark's GStreamer consumers
 * (`shmsrc ... ! fakesink`, `framehubsrc ... ! fakesink`) need a frame count
 * to check delivery, and fpsdisplaysink, which gst-launch-1.0 -v can print
 * one from, costs 18–20 µs of CPU per frame on the benchmark machine —
 * more than a fair comparison of transports allows. Here a buffer probe on
 * the sink's pad adds one atomic increment per buffer.
 *
 * Usage: gstcount [-interval MS] PIPELINE-DESCRIPTION...
 *
 * The description's words are joined with spaces, as gst-launch-1.0 does.
 * The counted sink is the element named "sink" when there is one, else the
 * pipeline's only sink element. Every MS milliseconds (default 500) it
 * prints "rendered: N, dropped: 0" on stdout (fpsdisplaysink's words, which
 * the benchmark parses). It exits 0 at end of stream, 1 with GStreamer's
 * message on stderr at an error, and 2 for a description it cannot use. */
#include <gst/gst.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  GMainLoop *loop;
  guint64 count;                /* atomic */
  int status;
} Count;

static GstPadProbeReturn
on_buffer (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Count *c = data;
  (void) pad;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST)
    __atomic_fetch_add (&c->count,
        gst_buffer_list_length (GST_PAD_PROBE_INFO_BUFFER_LIST (info)),
        __ATOMIC_RELAXED);
  else
    __atomic_fetch_add (&c->count, 1, __ATOMIC_RELAXED);
  return GST_PAD_PROBE_OK;
}

static gboolean
on_tick (gpointer data)
{
  Count *c = data;
  printf ("rendered: %" G_GUINT64_FORMAT ", dropped: 0\n",
      __atomic_load_n (&c->count, __ATOMIC_RELAXED));
  fflush (stdout);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_message (GstBus * bus, GstMessage * m, gpointer data)
{
  Count *c = data;
  GError *err = NULL;
  gchar *dbg = NULL;
  (void) bus;
  switch (GST_MESSAGE_TYPE (m)) {
    case GST_MESSAGE_ERROR:
      gst_message_parse_error (m, &err, &dbg);
      fprintf (stderr, "gstcount: error from %s: %s (%s)\n",
          GST_OBJECT_NAME (GST_MESSAGE_SRC (m)), err->message,
          dbg ? dbg : "no details");
      g_clear_error (&err);
      g_free (dbg);
      c->status = 1;
      g_main_loop_quit (c->loop);
      break;
    case GST_MESSAGE_EOS:
      on_tick (c);
      g_main_loop_quit (c->loop);
      break;
    default:
      break;
  }
  return TRUE;
}

/* find_sink returns the element named "sink" in pipeline, else its only
 * sink element (a reference), or NULL with a message. */
static GstElement *
find_sink (GstElement * pipeline)
{
  GstElement *named = NULL, *found = NULL;
  GstIterator *it;
  GValue v = G_VALUE_INIT;
  int n = 0;

  named = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  if (named)
    return named;
  it = gst_bin_iterate_sinks (GST_BIN (pipeline));
  while (gst_iterator_next (it, &v) == GST_ITERATOR_OK) {
    if (n++ == 0)
      found = gst_object_ref (g_value_get_object (&v));
    g_value_reset (&v);
  }
  g_value_unset (&v);
  gst_iterator_free (it);
  if (n != 1) {
    fprintf (stderr, "gstcount: the pipeline has %d sink elements; name the "
        "one to count \"sink\"\n", n);
    if (found)
      gst_object_unref (found);
    return NULL;
  }
  return found;
}

int
main (int argc, char **argv)
{
  Count c = { 0 };
  guint interval = 500;
  GError *err = NULL;
  GString *desc = g_string_new (NULL);
  GstElement *pipeline, *sink;
  GstPad *pad;
  GstBus *bus;
  int i = 1;

  gst_init (&argc, &argv);
  if (argc > 2 && strcmp (argv[1], "-interval") == 0) {
    char *end;
    unsigned long ms = strtoul (argv[2], &end, 10);
    if (*end != 0 || ms == 0 || ms > 60000) {
      fprintf (stderr, "gstcount: -interval %s: want milliseconds, 1 to "
          "60000\n", argv[2]);
      return 2;
    }
    interval = (guint) ms;
    i = 3;
  }
  for (; i < argc; i++)
    g_string_append_printf (desc, "%s%s", desc->len ? " " : "", argv[i]);
  if (desc->len == 0) {
    fprintf (stderr, "usage: gstcount [-interval MS] PIPELINE-DESCRIPTION\n");
    return 2;
  }
  pipeline = gst_parse_launch (desc->str, &err);
  if (pipeline == NULL || err != NULL) {
    fprintf (stderr, "gstcount: %s: %s\n", desc->str,
        err ? err->message : "no pipeline");
    return 2;
  }
  if (!GST_IS_PIPELINE (pipeline)) {
    /* A description of one element parses to the element alone, without
     * a bus: put it in a pipeline, as gst-launch-1.0 does. */
    GstElement *p = gst_pipeline_new (NULL);
    gst_bin_add (GST_BIN (p), pipeline);
    pipeline = p;
  }
  sink = find_sink (pipeline);
  if (sink == NULL)
    return 2;
  pad = gst_element_get_static_pad (sink, "sink");
  if (pad == NULL) {
    fprintf (stderr, "gstcount: %s has no sink pad\n", GST_OBJECT_NAME (sink));
    return 2;
  }
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER |
      GST_PAD_PROBE_TYPE_BUFFER_LIST, on_buffer, &c, NULL);
  gst_object_unref (pad);
  gst_object_unref (sink);

  c.loop = g_main_loop_new (NULL, FALSE);
  bus = gst_element_get_bus (pipeline);
  gst_bus_add_watch (bus, on_message, &c);
  gst_object_unref (bus);
  g_timeout_add (interval, on_tick, &c);
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    fprintf (stderr, "gstcount: the pipeline did not start (%s)\n", desc->str);
    c.status = 1;
  } else {
    g_main_loop_run (c.loop);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  g_main_loop_unref (c.loop);
  g_string_free (desc, TRUE);
  return c.status;
}
