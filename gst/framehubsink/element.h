/* framehubsink: the GStreamer element that makes a pipeline a framehub
 * producer. The element (element.c) is a GstBin around an appsink; the
 * producer runtime behind it is Go (main.go), reached only at state
 * changes and for "stats": frames travel from the appsink's streaming
 * thread to a Go goroutine through an eventfd (internal/gst SampleWatch),
 * never through a call into Go. */
#ifndef FRAMEHUB_FHSINK_ELEMENT_H
#define FRAMEHUB_FHSINK_ELEMENT_H

#include <stdint.h>
#include <stddef.h>
#include <gst/gst.h>

/* The element's settings for one start, copied out of its properties. */
typedef struct {
  const char *socket;           /* NULL: the default address */
  const char *stream;           /* NULL or "": named after the caps */
  unsigned pool_min, pool_max, pool_reserve;
  unsigned max_in_flight, max_hold_ms;
  unsigned h264_pool_max, h264_slab_size, h264_replay_ms;
  int stamp;
} FhsSettings;

/* Counters for the "stats" property. */
typedef struct {
  char stream[256];
  uint64_t frames, zero_copy, adopted, copied, dropped, stamped, unstamped,
      held, unwatched;
  int consumers;
} FhsStats;

/* For the Go side. */
void fhs_post_error (GstElement * element, const char *text);
int fhs_log_enabled (int level);
void fhs_log (int level, const char *text);

#endif
