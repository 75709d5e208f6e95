/*
 * kernels.cu: the __global__ wrappers of kernels.h. kernels.ptx is made from
 * this file on a machine with the CUDA toolkit (bench/gpu/run.sh does it):
 *
 *   nvcc -ptx -arch=compute_75 -o kernels.ptx kernels.cu
 *
 * compute_75 is the oldest virtual architecture CUDA 13 supports; the driver
 * compiles the PTX for the GPU it runs on when the module is loaded.
 */
#include "kernels.h"

#define FH_KERNEL_PARAMS                                                     \
  fh_u64 base, fh_u32 width, fh_u32 height, fh_u32 y_off, fh_u32 y_stride,   \
      fh_u32 uv_off, fh_u32 uv_stride, fh_u64 seq, fh_i64 mono, fh_u64 result

#define FH_ARGS                                                              \
  fh_args a = { base, width, height, y_off, y_stride, uv_off, uv_stride, seq, \
    mono, result }

extern "C" __global__ void
fh_render_picture (FH_KERNEL_PARAMS)
{
  FH_ARGS;
  fh_render_picture_thread (&a, blockIdx.x * blockDim.x + threadIdx.x);
}

extern "C" __global__ void
fh_render_stamp (FH_KERNEL_PARAMS)
{
  FH_ARGS;
  if (blockIdx.x == 0 && threadIdx.x == 0)
    fh_render_stamp_thread (&a);
}

extern "C" __global__ void
fh_verify_stamp (FH_KERNEL_PARAMS)
{
  FH_ARGS;
  if (blockIdx.x == 0 && threadIdx.x == 0)
    fh_verify_stamp_thread (&a);
}

extern "C" __global__ void
fh_verify_picture (FH_KERNEL_PARAMS)
{
  FH_ARGS;
  fh_verify_picture_thread (&a, blockIdx.x * blockDim.x + threadIdx.x);
}
