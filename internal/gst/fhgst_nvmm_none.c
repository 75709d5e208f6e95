//go:build !jetson

/* Without the jetson build tag no memory is NVMM memory (fhgst_nvmm.c). */
#include <gst/gst.h>

#include "fhgst_priv.h"

int
fh_nvmm_tag (GstMemory * mem, FhTag * t)
{
  (void) mem;
  (void) t;
  return 0;
}
