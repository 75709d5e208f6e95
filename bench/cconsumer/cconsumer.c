/* cconsumer is bench/consumer in C: a framehub consumer with no Go runtime
 * and no GStreamer, for the peer benchmark's framehub-c system. It speaks
 * the protocol with framehubsrc's own code (gst/framehubsrc/fhproto.c and
 * fhconn.c: the msgpack codec, the trusted-uid dial, the release ring),
 * subscribes with the queue policy and the release ring, and releases each
 * frame as soon as it is received, touching no pixel — what
 * `shmsrc ! fakesink` does with shmsink's frames. It maps nothing: the
 * surfaces' fds are closed as they are announced.
 *
 * Usage: cconsumer -socket PATH [-stream raw] [-warmup 2s] [-duration 10s]
 *                  [-max-in-flight 4]
 *
 * It measures from its first frame after the warm-up for the duration and
 * prints one JSON object with the fields of bench/consumer's that the peer
 * benchmark reads: frames, dropped, seconds, fps, cpu_ns, cpu_us_per_frame,
 * latency_p50_us, latency_p99_us (capture time to receipt), and how its
 * leases went back over its whole life: ring_releases (written into the
 * release ring) and release_msgs (Release messages, when the producer asked
 * to be woken or the ring was full). Exit status 1
 * with a message on stderr when the producer refuses, ends the session or
 * goes away before the window closes. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../../gst/framehubsrc/fhconn.h"
#include "../../gst/framehubsrc/fhproto.h"

#define MAX_LAT (1 << 20)

static void __attribute__((format (printf, 1, 2)))
die (const char *fmt, ...)
{
  va_list ap;
  fprintf (stderr, "cconsumer: ");
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  exit (1);
}

/* parse_duration reads a Go duration of whole units ("3s", "1m2s",
 * "500ms"), as the benchmark's harness formats them, into ns; -1 if it is
 * not one. */
static int64_t
parse_duration (const char *s)
{
  int64_t total = 0;
  if (*s == 0)
    return -1;
  while (*s) {
    char *end;
    double v = strtod (s, &end);
    int64_t unit;
    if (end == s)
      return -1;
    s = end;
    if (strncmp (s, "ms", 2) == 0)
      unit = 1000000, s += 2;
    else if (strncmp (s, "us", 2) == 0 || strncmp (s, "µs", 3) == 0)
      unit = 1000, s += (s[0] == 'u' ? 2 : 3);
    else if (strncmp (s, "ns", 2) == 0)
      unit = 1, s += 2;
    else if (*s == 'h')
      unit = 3600000000000LL, s++;
    else if (*s == 'm')
      unit = 60000000000LL, s++;
    else if (*s == 's')
      unit = 1000000000LL, s++;
    else
      return -1;
    total += (int64_t) (v * (double) unit);
  }
  return total;
}

/* cpu_ns is this process's CPU time, user and system, in ns. It is one
 * thread, so the thread's clock is the process's. */
static int64_t
cpu_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
  const char *addr = NULL, *stream = "raw";
  int64_t warmup = 2000000000LL, duration = 10000000000LL;
  unsigned max_in_flight = 4;
  static uint8_t buf[FH_MAX_PACKET];
  static FhMsg msg;
  static int fds[FH_MAX_FDS];
  static double lat[MAX_LAT];
  char err[1024];
  int err_no, nfds, measuring = 0, welcomed = 0;
  size_t nlat = 0, hn;
  uint64_t frames = 0, dropped = 0;
  int64_t start = 0, end = 0, cpu0 = 0, cpu1, now;
  uint8_t hello[512];
  FhCounters *ctr;
  FhConn *c;
  FhHello h;

  for (int i = 1; i < argc; i++) {
    const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (f[0] == '-' && f[1] == '-')
      f++;
    if (v == NULL)
      die ("flag %s needs a value", f);
    if (strcmp (f, "-socket") == 0)
      addr = v;
    else if (strcmp (f, "-stream") == 0)
      stream = v;
    else if (strcmp (f, "-warmup") == 0) {
      if ((warmup = parse_duration (v)) < 0)
        die ("-warmup %s: want a duration such as 2s or 500ms", v);
    } else if (strcmp (f, "-duration") == 0) {
      if ((duration = parse_duration (v)) <= 0)
        die ("-duration %s: want a positive duration such as 10s", v);
    } else if (strcmp (f, "-max-in-flight") == 0) {
      char *end;
      max_in_flight = (unsigned) strtoul (v, &end, 10);
      if (*end != 0 || max_in_flight == 0)
        die ("-max-in-flight %s: want a positive number", v);
    } else
      die ("bad flag %s %s (want -socket, -stream, -warmup, -duration, "
          "-max-in-flight)", f, v);
    i++;
  }
  if (addr == NULL)
    die ("-socket PATH is required");

  ctr = fh_counters_new ();
  c = fh_conn_dial (addr, ctr, &err_no, err, sizeof err);
  if (c == NULL)
    die ("%s", err);
  memset (&h, 0, sizeof h);
  h.name = "cconsumer";
  h.stream = stream;
  h.policy = "queue";
  h.max_in_flight = max_in_flight;
  h.flags = FH_HELLO_RELEASE_RING;
  hn = fh_encode_hello (hello, sizeof hello, &h);
  if (hn == 0 || fh_conn_send (c, hello, hn) != 0)
    die ("send Hello to %s", addr);

  for (;;) {
    struct pollfd p = { fh_conn_fd (c), POLLIN, 0 };
    ssize_t n;

    fh_conn_wait_begin (c);
    while (poll (&p, 1, -1) < 0 && errno == EINTR);
    fh_conn_wait_end (c);
    for (;;) {
      n = fh_conn_recv (c, buf, sizeof buf, fds, &nfds);
      if (n == -EAGAIN)
        break;
      if (n <= 0)
        die ("receive from %s: %s", addr, n == 0 ? "the producer closed the "
            "connection" : strerror ((int) -n));
      if (fh_decode (buf, (size_t) n, &msg, err, sizeof err) < 0) {
        for (int i = 0; i < nfds; i++)
          close (fds[i]);
        die ("%s", err);
      }
      if (msg.type == FH_MSG_RING) {
        if (nfds != 1 || fh_conn_map_ring (c, fds[0], msg.u.ring_size, err,
                sizeof err) < 0)
          die ("release ring: %s", nfds != 1 ? "not one fd" : err);
      }
      /* Announce: nothing is mapped, the fds are not kept. */
      for (int i = 0; i < nfds; i++)
        close (fds[i]);
      switch (msg.type) {
        case FH_MSG_WELCOME:
          welcomed = 1;
          break;
        case FH_MSG_REJECT:
        case FH_MSG_BYE:
          die ("the producer ended the session: %s (%s)",
              fh_code_name (msg.u.reason.code), msg.u.reason.reason);
          break;
        case FH_MSG_PING:{
          uint8_t pong[64];
          size_t pn = fh_encode_pong (pong, sizeof pong, msg.u.ping.token,
              msg.u.ping.mono_ns);
          (void) fh_conn_send (c, pong, pn);
          break;
        }
        case FH_MSG_FRAME:
          if (!welcomed)
            die ("a Frame before the Welcome");
          fh_conn_release (c, msg.u.frame.lease);
          now = fh_mono_now ();
          if (!measuring) {
            if (start == 0)
              start = now + warmup;
            if (now < start)
              break;
            measuring = 1;
            start = now;
            end = now + duration;
            cpu0 = cpu_ns ();
            break;
          }
          frames++;
          dropped += msg.u.frame.dropped;
          if (nlat < MAX_LAT && msg.u.frame.mono_ns > 0)
            lat[nlat++] = (double) (now - msg.u.frame.mono_ns) / 1e3;
          if (now >= end)
            goto done;
          break;
        default:
          break;
      }
    }
  }
done:
  cpu1 = cpu_ns ();
  now = fh_mono_now ();
  qsort (lat, nlat, sizeof lat[0], cmp_double);
  {
    double secs = (double) (now - start) / 1e9;
    double p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[nlat * 99 / 100] : 0;
    printf ("{\"frames\":%llu,\"dropped\":%llu,\"seconds\":%.6f,\"fps\":%.4f,"
        "\"cpu_ns\":%lld,\"cpu_us_per_frame\":%.3f,\"latency_p50_us\":%.1f,"
        "\"latency_p99_us\":%.1f,\"ring_releases\":%llu,"
        "\"release_msgs\":%llu}\n", (unsigned long long) frames,
        (unsigned long long) dropped, secs, (double) frames / secs,
        (long long) (cpu1 - cpu0),
        (double) (cpu1 - cpu0) / 1e3 / (double) (frames ? frames : 1), p50,
        p99, (unsigned long long) __atomic_load_n (&ctr->ring_writes,
            __ATOMIC_RELAXED),
        (unsigned long long) __atomic_load_n (&ctr->release_msgs,
            __ATOMIC_RELAXED));
  }
  fh_conn_close (c, FH_CODE_OK, "done");
  fh_conn_unref (c);
  fh_counters_unref (ctr);
  return 0;
}
