/* fhproto_check drives framehubsrc's wire protocol code (gst/framehubsrc/
 * fhproto.c) for test/gstelem's TestProtocol: one command per line on
 * stdin, one line of answer on stdout.
 *
 *   d HEX                                     decode a packet, print it
 *   e hello NAME STREAM POLICY MIF HOLD FLAGS  encode, print the hex
 *   e release ID...
 *   e keyframe
 *   e pong TOKEN MONO
 *   e bye CODE REASON
 *
 * Test support only. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhproto.h"

static FhMsg msg;

static void
print_caps (const FhCaps * c)
{
  printf ("caps=%s %ux%u %u/%u planes=[", c->format, c->width, c->height,
      c->fps_n, c->fps_d);
  for (int i = 0; i < c->n_planes; i++)
    printf ("%s%u,%u,%u,%u", i ? ";" : "", c->planes[i].offset,
        c->planes[i].stride, c->planes[i].size, c->planes[i].fd);
  printf ("] codec=%s", c->codec);
}

static void
print_msg (void)
{
  switch (msg.type) {
    case FH_MSG_WELCOME:{
      FhWelcome *w = &msg.u.welcome;
      printf ("Welcome major=%u minor=%u session=%" PRIu64 " stream=%s mif=%u "
          "hold=%u policy=%s flags=%u ", w->major, w->minor, w->session,
          w->stream, w->max_in_flight, w->max_hold_ms, w->policy, w->flags);
      print_caps (&w->caps);
      printf (" pool=%u,%u,%" PRIu64 ",%u", w->pool_min, w->pool_max,
          w->pool_surface_size, w->pool_kind);
      break;
    }
    case FH_MSG_REJECT:
    case FH_MSG_BYE:
      printf ("%s code=%u reason=%s", fh_type_name (msg.type),
          msg.u.reason.code, msg.u.reason.reason);
      break;
    case FH_MSG_EOS:
      printf ("EOS reason=%s", msg.u.reason.reason);
      break;
    case FH_MSG_ANNOUNCE:
      printf ("Announce [");
      for (int i = 0; i < msg.u.announce.n_surfaces; i++) {
        FhSurfaceDesc *s = &msg.u.announce.surfaces[i];
        printf ("%s%u,%u,%" PRIu64 ",%u,%u,%d,%d", i ? ";" : "", s->id, s->gen,
            s->size, s->kind, s->nfds, s->has_device, s->no_cpu_map);
      }
      printf ("] fds=%d", msg.u.announce.n_fds);
      break;
    case FH_MSG_FRAME:{
      FhFrame *f = &msg.u.frame;
      printf ("Frame lease=%" PRIu64 " surface=%u gen=%u seq=%" PRIu64
          " offset=%u size=%u pts=%" PRId64 " dts=%" PRId64 " dur=%" PRId64
          " mono=%" PRId64 " real=%" PRId64 " flags=%u dropped=%u planes=[",
          f->lease, f->surface, f->gen, f->seq, f->offset, f->size, f->pts,
          f->dts, f->dur, f->mono_ns, f->real_ns, f->flags, f->dropped);
      for (int i = 0; i < f->n_planes; i++)
        printf ("%s%u,%u,%u,%u", i ? ";" : "", f->planes[i].offset,
            f->planes[i].stride, f->planes[i].size, f->planes[i].fd);
      printf ("]");
      break;
    }
    case FH_MSG_FORGET:
      printf ("Forget [");
      for (int i = 0; i < msg.u.forget.n_ids; i++)
        printf ("%s%u", i ? "," : "", msg.u.forget.ids[i]);
      printf ("]");
      break;
    case FH_MSG_CAPS:
      printf ("Caps ");
      print_caps (&msg.u.caps);
      break;
    case FH_MSG_PING:
    case FH_MSG_PONG:
      printf ("%s token=%" PRIu64 " mono=%" PRId64, fh_type_name (msg.type),
          msg.u.ping.token, msg.u.ping.mono_ns);
      break;
    case FH_MSG_RING:
      printf ("Ring size=%u", msg.u.ring_size);
      break;
    default:
      printf ("Unknown tag=%d", msg.tag);
  }
}

static void
print_hex (const uint8_t * b, size_t n)
{
  if (n == 0) {
    printf ("error: does not fit");
    return;
  }
  for (size_t i = 0; i < n; i++)
    printf ("%02x", b[i]);
}

static uint8_t pkt[FH_MAX_PACKET + 16];
static char line[4 * FH_MAX_PACKET];

int
main (void)
{
  while (fgets (line, sizeof line, stdin)) {
    char *save = NULL, *cmd = strtok_r (line, " \n", &save);
    if (cmd == NULL)
      continue;
    if (strcmp (cmd, "d") == 0) {
      char *hex = strtok_r (NULL, " \n", &save), err[1024];
      size_t n = hex ? strlen (hex) / 2 : 0;
      for (size_t i = 0; i < n && i < sizeof pkt; i++)
        sscanf (hex + 2 * i, "%2hhx", &pkt[i]);
      if (fh_decode (pkt, n, &msg, err, sizeof err) < 0)
        printf ("error: %s", err);
      else
        print_msg ();
    } else if (strcmp (cmd, "e") == 0) {
      char *what = strtok_r (NULL, " \n", &save);
      size_t n = 0;
      if (what && strcmp (what, "hello") == 0) {
        FhHello h;
        h.name = strtok_r (NULL, " \n", &save);
        h.stream = strtok_r (NULL, " \n", &save);
        h.policy = strtok_r (NULL, " \n", &save);
        h.max_in_flight = (uint32_t) strtoul (strtok_r (NULL, " \n", &save),
            NULL, 10);
        h.max_hold_ms = (uint32_t) strtoul (strtok_r (NULL, " \n", &save),
            NULL, 10);
        h.flags = (uint32_t) strtoul (strtok_r (NULL, " \n", &save), NULL,
            10);
        n = fh_encode_hello (pkt, sizeof pkt, &h);
      } else if (what && strcmp (what, "release") == 0) {
        static uint64_t ids[FH_MAX_PACKET];
        int k = 0;
        for (char *t; (t = strtok_r (NULL, " \n", &save)) && k < FH_MAX_PACKET;)
          ids[k++] = strtoull (t, NULL, 10);
        n = fh_encode_release (pkt, FH_MAX_PACKET, ids, k);
      } else if (what && strcmp (what, "keyframe") == 0) {
        n = fh_encode_request_keyframe (pkt, sizeof pkt);
      } else if (what && strcmp (what, "pong") == 0) {
        uint64_t tok = strtoull (strtok_r (NULL, " \n", &save), NULL, 10);
        int64_t mono = strtoll (strtok_r (NULL, " \n", &save), NULL, 10);
        n = fh_encode_pong (pkt, sizeof pkt, tok, mono);
      } else if (what && strcmp (what, "bye") == 0) {
        unsigned code = (unsigned) strtoul (strtok_r (NULL, " \n", &save),
            NULL, 10);
        n = fh_encode_bye (pkt, sizeof pkt, (uint16_t) code,
            strtok_r (NULL, "\n", &save));
      }
      print_hex (pkt, n);
    }
    printf ("\n");
    fflush (stdout);
  }
  return 0;
}
