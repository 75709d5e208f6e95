/*
 * kernels.h: framehub's GPU test-pattern kernels, written once for two
 * compilers.
 *
 * kernels.cu includes this file with nvcc: the functions become __device__
 * code and kernels.ptx (embedded by package gpuframe, loaded with
 * cuModuleLoadData) is generated from it. The stand-in libcuda.so.1 of the
 * tests (internal/cuda/standin) includes the same file with gcc and runs the
 * very same per-thread functions on the CPU when a test "launches" a kernel,
 * so the CPU-only CI checks the code the GPU runs, not a second copy of it.
 *
 * Four kernels, all taking the fields of fh_args as their parameters, in
 * order (FH_NPARAMS of them):
 *
 *   fh_render_picture  1-D grid, one thread per 4 bytes of a row: writes the
 *                      NV12 picture of frame seq, leaving the stamp region
 *                      (rows 0..7, bytes 0..min(width,256)-1 of Y) alone.
 *   fh_render_stamp    one thread: writes the frame stamp (sdk/stamp's
 *                      format 1: pattern rows, tail, header, CRC-32C, magic
 *                      last).
 *   fh_verify_stamp    one thread: resets *result and checks the stamp.
 *   fh_verify_picture  same grid as fh_render_picture: counts the bytes that
 *                      differ from frame seq's picture into *result.
 *
 * Launch fh_verify_stamp before fh_verify_picture on one stream: the first
 * resets the counters the second adds to.
 *
 * The picture: Y(x, y) = (x + 3y + 5 seq) mod 256, CbCr byte x of chroma
 * row y = (2x + y + 7 seq) mod 256. It changes every frame, everywhere, so
 * a surface holding another frame's pixels (reuse while leased, a torn
 * write) differs in every byte. Stride padding is never written or read.
 */
#ifndef FH_KERNELS_H
#define FH_KERNELS_H

#ifdef __CUDACC__
#define FH_DEV static __device__ __forceinline__
typedef unsigned char fh_u8;
typedef unsigned int fh_u32;
typedef unsigned long long fh_u64;
typedef long long fh_i64;
#define FH_ATOMIC_ADD(p, v) atomicAdd ((p), (v))
#define FH_ATOMIC_MIN(p, v) atomicMin ((p), (v))
#else
#include <stdint.h>
#include <string.h>
#define FH_DEV static inline
typedef uint8_t fh_u8;
typedef uint32_t fh_u32;
typedef uint64_t fh_u64;
typedef int64_t fh_i64;
/* The stand-in runs a launch's threads one after the other. */
#define FH_ATOMIC_ADD(p, v) (*(p) += (v))
#define FH_ATOMIC_MIN(p, v) (*(p) = *(p) < (v) ? *(p) : (v))
#endif

/* Stamp format 1 (sdk/stamp). */
#define FH_STAMP_ROWS 8
#define FH_STAMP_HEADER 32
#define FH_STAMP_MAX_RW 256
#define FH_STAMP_MIN_WIDTH 64

/* Result status values (fh_result.status). */
#define FH_OK 0
#define FH_NO_STAMP 1           /* magic, version, width or rows wrong */
#define FH_BAD_CHECKSUM 2       /* CRC-32C mismatch: corrupt or torn */

/* What the verify kernels leave at `result` (32 bytes, device memory). */
typedef struct {
  fh_u32 status;                /* FH_OK, FH_NO_STAMP, FH_BAD_CHECKSUM */
  fh_u32 mismatches;            /* picture bytes that differ from frame seq's */
  fh_u64 seq;                   /* the stamp's seq (status FH_OK) */
  fh_i64 mono;                  /* the stamp's mono_ns (status FH_OK) */
  fh_u32 first_bad;             /* lowest thread index that found a mismatch, 0xffffffff if none */
  fh_u32 reserved;
} fh_result;

/* The kernels' parameters, in launch order. */
typedef struct {
  fh_u64 base;                  /* device address of the surface */
  fh_u32 width, height;         /* pixels; even; width >= FH_STAMP_MIN_WIDTH */
  fh_u32 y_off, y_stride;       /* Y plane: offset in the surface, bytes per row */
  fh_u32 uv_off, uv_stride;     /* CbCr plane */
  fh_u64 seq;                   /* frame sequence number */
  fh_i64 mono;                  /* capture time, CLOCK_MONOTONIC ns (stamp only) */
  fh_u64 result;                /* device address of an fh_result (verify only; 0 otherwise) */
} fh_args;

#define FH_NPARAMS 10

FH_DEV fh_u8
fh_y (fh_u32 x, fh_u32 y, fh_u64 seq)
{
  return (fh_u8) (x + 3u * y + 5u * (fh_u32) seq);
}

FH_DEV fh_u8
fh_uv (fh_u32 x, fh_u32 y, fh_u64 seq)
{
  return (fh_u8) (2u * x + y + 7u * (fh_u32) seq);
}

/* Threads a picture launch needs: one per 4 bytes of every Y and CbCr row. */
FH_DEV fh_u32
fh_picture_threads (const fh_args * a)
{
  fh_u32 per_row = (a->width + 3u) / 4u;
  return per_row * (a->height + a->height / 2u);
}

FH_DEV fh_u32
fh_region_width (fh_u32 width)
{
  return width < FH_STAMP_MAX_RW ? width : FH_STAMP_MAX_RW;
}

/* fh_group locates thread tid's 4 bytes: the row's address, the first x,
 * and whether the row is a Y row. It returns 0 past the picture. */
FH_DEV int
fh_group (const fh_args * a, fh_u32 tid, fh_u8 ** row, fh_u32 * x0, fh_u32 * r,
    int *luma)
{
  fh_u32 per_row = (a->width + 3u) / 4u;
  fh_u32 rows = tid / per_row;
  *x0 = (tid % per_row) * 4u;
  if (rows < a->height) {
    *r = rows;
    *luma = 1;
    *row = (fh_u8 *) (a->base + a->y_off + (fh_u64) rows * a->y_stride);
    return 1;
  }
  rows -= a->height;
  if (rows >= a->height / 2u)
    return 0;
  *r = rows;
  *luma = 0;
  *row = (fh_u8 *) (a->base + a->uv_off + (fh_u64) rows * a->uv_stride);
  return 1;
}

FH_DEV fh_u8
fh_expected (int luma, fh_u32 x, fh_u32 r, fh_u64 seq)
{
  return luma ? fh_y (x, r, seq) : fh_uv (x, r, seq);
}

/* fh_in_stamp: byte x of Y row r belongs to the stamp region. */
FH_DEV int
fh_in_stamp (const fh_args * a, int luma, fh_u32 x, fh_u32 r)
{
  return luma && r < FH_STAMP_ROWS && x < fh_region_width (a->width);
}

FH_DEV void
fh_render_picture_thread (const fh_args * a, fh_u32 tid)
{
  fh_u8 *row;
  fh_u32 x0, r, k;
  int luma;
  if (!fh_group (a, tid, &row, &x0, &r, &luma))
    return;
  /* The stamp region is a prefix of its rows: x0 outside it means all four
   * bytes are. */
  if (x0 + 4u <= a->width && !fh_in_stamp (a, luma, x0, r)
      && ((fh_u64) (row + x0) & 3u) == 0) {
    fh_u32 w = 0;
    for (k = 0; k < 4u; k++)
      w |= (fh_u32) fh_expected (luma, x0 + k, r, a->seq) << (8u * k);
    *(fh_u32 *) (row + x0) = w; /* little-endian, as every CUDA device */
    return;
  }
  for (k = 0; k < 4u && x0 + k < a->width; k++)
    if (!fh_in_stamp (a, luma, x0 + k, r))
      row[x0 + k] = fh_expected (luma, x0 + k, r, a->seq);
}

FH_DEV void
fh_verify_picture_thread (const fh_args * a, fh_u32 tid)
{
  fh_u8 *row;
  fh_u32 x0, r, k, bad = 0;
  int luma;
  fh_result *res = (fh_result *) a->result;
  if (!fh_group (a, tid, &row, &x0, &r, &luma))
    return;
  for (k = 0; k < 4u && x0 + k < a->width; k++)
    if (!fh_in_stamp (a, luma, x0 + k, r)
        && row[x0 + k] != fh_expected (luma, x0 + k, r, a->seq))
      bad++;
  if (bad) {
    FH_ATOMIC_ADD (&res->mismatches, bad);
    FH_ATOMIC_MIN (&res->first_bad, tid);
  }
}

/* CRC-32C (Castagnoli, reflected 0x82F63B78), bit by bit: one thread runs
 * it over 2 KiB, about 16k steps, tens of microseconds on a GPU. */
FH_DEV fh_u32
fh_crc_byte (fh_u32 crc, fh_u8 b)
{
  int i;
  crc ^= b;
  for (i = 0; i < 8; i++)
    crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  return crc;
}

FH_DEV void
fh_put_le (fh_u8 * p, fh_u64 v, int n)
{
  int i;
  for (i = 0; i < n; i++)
    p[i] = (fh_u8) (v >> (8 * i));
}

FH_DEV fh_u64
fh_get_le (const fh_u8 * p, int n)
{
  fh_u64 v = 0;
  int i;
  for (i = 0; i < n; i++)
    v |= (fh_u64) p[i] << (8 * i);
  return v;
}

/* fh_stamp_crc checksums the region as sdk/stamp defines it: header
 * bytes 0..27 (from hdr), the tail of row 0, rows 1..7. */
FH_DEV fh_u32
fh_stamp_crc (const fh_u8 * hdr, const fh_u8 * y, fh_u32 stride, fh_u32 rw)
{
  fh_u32 crc = 0xFFFFFFFFu, j, r;
  for (j = 0; j < 28u; j++)
    crc = fh_crc_byte (crc, hdr[j]);
  for (j = FH_STAMP_HEADER; j < rw; j++)
    crc = fh_crc_byte (crc, y[j]);
  for (r = 1; r < FH_STAMP_ROWS; r++)
    for (j = 0; j < rw; j++)
      crc = fh_crc_byte (crc, y[(fh_u64) r * stride + j]);
  return crc ^ 0xFFFFFFFFu;
}

FH_DEV void
fh_render_stamp_thread (const fh_args * a)
{
  fh_u8 *y = (fh_u8 *) (a->base + a->y_off);
  fh_u32 rw = fh_region_width (a->width), j, r;
  fh_u8 hdr[28];
  /* Invalidate first, as sdk/stamp's producer rules ask. */
  for (j = 0; j < FH_STAMP_HEADER; j++)
    y[j] = 0;
  for (r = 1; r < FH_STAMP_ROWS; r++)
    for (j = 0; j < rw; j++)
      y[(fh_u64) r * a->y_stride + j] = (fh_u8) (a->seq * 31u + r * 7u + j);
  for (j = FH_STAMP_HEADER; j < rw; j++)
    y[j] = (fh_u8) (a->seq ^ j);
  hdr[0] = 'F';
  hdr[1] = 'H';
  hdr[2] = 'S';
  hdr[3] = 'T';
  fh_put_le (hdr + 4, 1, 2);
  fh_put_le (hdr + 6, rw, 2);
  fh_put_le (hdr + 8, FH_STAMP_ROWS, 2);
  fh_put_le (hdr + 10, 0, 2);
  fh_put_le (hdr + 12, a->seq, 8);
  fh_put_le (hdr + 20, (fh_u64) a->mono, 8);
  for (j = 4; j < 28u; j++)
    y[j] = hdr[j];
  fh_put_le (y + 28, fh_stamp_crc (hdr, y, a->y_stride, rw), 4);
  /* The magic last. Consumers read the surface only after the producer's
   * stream synchronisation, so no fence is needed for them; the order
   * keeps the format's rule for any reader. */
  for (j = 0; j < 4u; j++)
    y[j] = hdr[j];
}

FH_DEV void
fh_verify_stamp_thread (const fh_args * a)
{
  const fh_u8 *y = (const fh_u8 *) (a->base + a->y_off);
  fh_result *res = (fh_result *) a->result;
  fh_u32 rw = fh_region_width (a->width);
  res->mismatches = 0;
  res->first_bad = 0xFFFFFFFFu;
  res->seq = 0;
  res->mono = 0;
  res->reserved = 0;
  if (y[0] != 'F' || y[1] != 'H' || y[2] != 'S' || y[3] != 'T'
      || fh_get_le (y + 4, 2) != 1u || fh_get_le (y + 6, 2) != rw
      || fh_get_le (y + 8, 2) != FH_STAMP_ROWS) {
    res->status = FH_NO_STAMP;
    return;
  }
  if (fh_stamp_crc (y, y, a->y_stride, rw) != (fh_u32) fh_get_le (y + 28, 4)) {
    res->status = FH_BAD_CHECKSUM;
    return;
  }
  res->seq = fh_get_le (y + 12, 8);
  res->mono = (fh_i64) fh_get_le (y + 20, 8);
  res->status = FH_OK;
}

#endif /* FH_KERNELS_H */
