/* The framehubsrc plugin: one element, written in C against
 * docs/PROTOCOL.md (no Go runtime in the pipelines that use it). */
#include <gst/gst.h>

#include "gstframehubsrc.h"

/* The plugin's version: that of the wire protocol it speaks. */
#define FRAMEHUB_VERSION "1.1"
#define PACKAGE "framehub"

static gboolean
plugin_init (GstPlugin * plugin)
{
  return gst_element_register (plugin, "framehubsrc", GST_RANK_NONE,
      GST_TYPE_FRAMEHUB_SRC);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, framehubsrc,
    "framehub consumer: frames of a framehub producer's stream, zero-copy",
    plugin_init, FRAMEHUB_VERSION, "unknown", "framehub",
    "https://github.com/framehub/framehub")
