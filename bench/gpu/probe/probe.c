/*
 * probe.c: device facts and a check of kernels.ptx against the C reference,
 * run on the GPU machine by bench/gpu/run.sh (built there with the toolkit's
 * cuda.h, linked against libcuda).
 *
 * It prints the facts docs/bench/gpu.md quotes (driver, device, UUID,
 * compute capability, the attributes the cuda surface kind relies on, the
 * allocation granularity), then renders one 3840x2160 NV12 frame with the
 * PTX into a cuMemCreate allocation exported as a POSIX fd, copies it to the
 * host and checks it with the same kernels.h code compiled for the CPU (the
 * code the tests' stand-in libcuda runs), runs the GPU verify kernels on it
 * (also after corrupting one byte), and exports the allocation as a DMA-BUF
 * to see what a CPU mmap of it does. Exit status 0 only when every check
 * passed.
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kernels.h"

static int failed;

#define CK(call)                                                              \
  do {                                                                        \
    CUresult r_ = (call);                                                     \
    if (r_ != CUDA_SUCCESS) {                                                 \
      const char *n_ = "?";                                                   \
      cuGetErrorName (r_, &n_);                                               \
      fprintf (stderr, "probe: %s failed: %s (%d) at line %d\n", #call, n_,   \
          (int) r_, __LINE__);                                                \
      exit (1);                                                               \
    }                                                                         \
  } while (0)

static double
now_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void
check (int ok, const char *what)
{
  printf ("check %-58s %s\n", what, ok ? "ok" : "FAILED");
  if (!ok)
    failed = 1;
}

static char *
read_file (const char *path)
{
  FILE *f = fopen (path, "rb");
  long n;
  char *b;
  if (!f) {
    perror (path);
    exit (1);
  }
  fseek (f, 0, SEEK_END);
  n = ftell (f);
  rewind (f);
  b = malloc (n + 1);
  if (fread (b, 1, n, f) != (size_t) n) {
    perror (path);
    exit (1);
  }
  b[n] = 0;
  fclose (f);
  return b;
}

static void
launch (CUfunction fn, unsigned grid, unsigned block, CUstream s, fh_args * a)
{
  void *p[FH_NPARAMS] = { &a->base, &a->width, &a->height, &a->y_off,
    &a->y_stride, &a->uv_off, &a->uv_stride, &a->seq, &a->mono, &a->result
  };
  CK (cuLaunchKernel (fn, grid, 1, 1, block, 1, 1, 0, s, p, NULL));
}

int
main (int argc, char **argv)
{
  const char *ptx_path = argc > 1 ? argv[1] : "kernels.ptx";
  int ver, n, dev_ord, v;
  CUdevice dev;
  CUcontext ctx;
  CUuuid uuid;
  char name[256];
  size_t total, gran;
  CUmemAllocationProp prop;
  CUmemAccessDesc acc;
  CUmemGenericAllocationHandle h;
  CUdeviceptr ptr, resp;
  CUmodule mod;
  CUfunction f_pic, f_stamp, f_vstamp, f_vpic;
  CUstream s;
  CUevent e0, e1;
  fh_args a;
  fh_result res;
  unsigned char *host;
  const fh_u32 W = 3840, H = 2160, stride = 3840;
  size_t ysize = (size_t) stride * H, uvoff = (ysize + 4095) & ~(size_t) 4095;
  size_t size = uvoff + (size_t) stride * (H / 2), alloc;
  unsigned threads, block = 256, grid;
  int fd, dfd, i;
  float ms;
  char *ptx;

  CK (cuInit (0));
  CK (cuDriverGetVersion (&ver));
  CK (cuDeviceGetCount (&n));
  printf ("driver_version %d\ndevices %d\n", ver, n);
  for (dev_ord = 0; dev_ord < n; dev_ord++) {
    CK (cuDeviceGet (&dev, dev_ord));
    CK (cuDeviceGetName (name, sizeof name, dev));
    CK (cuDeviceGetUuid_v2 (&uuid, dev));
    CK (cuDeviceTotalMem (&total, dev));
    printf ("device %d name %s\n", dev_ord, name);
    printf ("device %d uuid GPU-", dev_ord);
    for (i = 0; i < 16; i++)
      printf ("%02x%s", (unsigned char) uuid.bytes[i], (i == 3 || i == 5
              || i == 7 || i == 9) ? "-" : "");
    printf ("\ndevice %d total_mem %zu\n", dev_ord, total);
#define ATTR(a) do { CK (cuDeviceGetAttribute (&v, a, dev)); printf ("device %d %s %d\n", dev_ord, #a, v); } while (0)
    ATTR (CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
    ATTR (CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    ATTR (CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
    ATTR (CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED);
    ATTR (CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED);
    ATTR (CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED);
    ATTR (CU_DEVICE_ATTRIBUTE_INTEGRATED);
    ATTR (CU_DEVICE_ATTRIBUTE_PCI_BUS_ID);
  }

  CK (cuDeviceGet (&dev, 0));
  CK (cuDevicePrimaryCtxRetain (&ctx, dev));
  CK (cuCtxSetCurrent (ctx));
  memset (&prop, 0, sizeof prop);
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = 0;
  CK (cuMemGetAllocationGranularity (&gran, &prop,
          CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  printf ("granularity_minimum %zu\n", gran);
  CK (cuMemGetAllocationGranularity (&gran, &prop,
          CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
  printf ("granularity_recommended %zu\n", gran);
  CK (cuMemGetAllocationGranularity (&gran, &prop,
          CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  alloc = (size + gran - 1) / gran * gran;
  printf ("nv12_3840x2160_bytes %zu allocation %zu\n", size, alloc);
  printf ("sizeof_CUmemAllocationProp %zu sizeof_CUmemAccessDesc %zu sizeof_CUuuid %zu\n",
      sizeof (CUmemAllocationProp), sizeof (CUmemAccessDesc), sizeof (CUuuid));

  CK (cuMemCreate (&h, alloc, &prop, 0));
  CK (cuMemExportToShareableHandle (&fd, h,
          CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
  {
    char link[64], target[256];
    ssize_t k;
    snprintf (link, sizeof link, "/proc/self/fd/%d", fd);
    k = readlink (link, target, sizeof target - 1);
    target[k > 0 ? k : 0] = 0;
    printf ("exported_fd_target %s cloexec %d\n", target,
        (fcntl (fd, F_GETFD) & FD_CLOEXEC) != 0);
  }
  CK (cuMemAddressReserve (&ptr, alloc, 0, 0, 0));
  CK (cuMemMap (ptr, alloc, 0, h, 0));
  acc.location = prop.location;
  acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  CK (cuMemSetAccess (ptr, alloc, &acc, 1));
  CK (cuMemAlloc (&resp, sizeof (fh_result)));

  ptx = read_file (ptx_path);
  CK (cuModuleLoadData (&mod, ptx));
  CK (cuModuleGetFunction (&f_pic, mod, "fh_render_picture"));
  CK (cuModuleGetFunction (&f_stamp, mod, "fh_render_stamp"));
  CK (cuModuleGetFunction (&f_vstamp, mod, "fh_verify_stamp"));
  CK (cuModuleGetFunction (&f_vpic, mod, "fh_verify_picture"));
  CK (cuStreamCreate (&s, CU_STREAM_NON_BLOCKING));
  CK (cuEventCreate (&e0, CU_EVENT_DEFAULT));
  CK (cuEventCreate (&e1, CU_EVENT_DEFAULT));

  /* Poison, then render frame 1234567. */
  CK (cuMemsetD8 (ptr, 0xA5, alloc));
  memset (&a, 0, sizeof a);
  a.base = ptr;
  a.width = W;
  a.height = H;
  a.y_off = 0;
  a.y_stride = stride;
  a.uv_off = (fh_u32) uvoff;
  a.uv_stride = stride;
  a.seq = 1234567;
  a.mono = 987654321012345LL;
  a.result = 0;
  threads = fh_picture_threads (&a);
  grid = (threads + block - 1) / block;
  for (i = 0; i < 3; i++) {
    CK (cuEventRecord (e0, s));
    launch (f_pic, grid, block, s, &a);
    CK (cuEventRecord (e1, s));
    launch (f_stamp, 1, 1, s, &a);
    CK (cuStreamSynchronize (s));
    CK (cuEventElapsedTime (&ms, e0, e1));
    printf ("render_picture_us %.1f\n", ms * 1000);
  }
  {
    double t0 = now_us ();
    CK (cuEventRecord (e0, s));
    launch (f_stamp, 1, 1, s, &a);
    CK (cuEventRecord (e1, s));
    CK (cuStreamSynchronize (s));
    CK (cuEventElapsedTime (&ms, e0, e1));
    printf ("render_stamp_us %.1f (host wall incl. sync %.1f)\n", ms * 1000,
        now_us () - t0);
  }

  /* The C reference, on the CPU, over a host copy. */
  host = malloc (alloc);
  CK (cuMemcpyDtoH (host, ptr, alloc));
  {
    fh_args ha = a;
    fh_result hr;
    fh_u32 t;
    ha.base = (fh_u64) (uintptr_t) host;
    ha.result = (fh_u64) (uintptr_t) & hr;
    fh_verify_stamp_thread (&ha);
    for (t = 0; t < threads; t++)
      fh_verify_picture_thread (&ha, t);
    printf ("cpu_reference status %u seq %llu mono %lld mismatches %u\n",
        hr.status, (unsigned long long) hr.seq, (long long) hr.mono,
        hr.mismatches);
    check (hr.status == FH_OK && hr.seq == a.seq && hr.mono == a.mono
        && hr.mismatches == 0, "GPU-rendered frame passes the C reference");
    check (host[size] == 0xA5 && host[alloc - 1] == 0xA5,
        "allocation past the UV plane untouched (poison kept)");
  }

  /* The GPU verify kernels. */
  a.result = resp;
  for (i = 0; i < 3; i++) {
    CK (cuEventRecord (e0, s));
    launch (f_vstamp, 1, 1, s, &a);
    launch (f_vpic, grid, block, s, &a);
    CK (cuEventRecord (e1, s));
    CK (cuMemcpyDtoHAsync (&res, resp, sizeof res, s));
    CK (cuStreamSynchronize (s));
    CK (cuEventElapsedTime (&ms, e0, e1));
    printf ("verify_us %.1f status %u seq %llu mismatches %u\n", ms * 1000,
        res.status, (unsigned long long) res.seq, res.mismatches);
  }
  check (res.status == FH_OK && res.seq == a.seq && res.mismatches == 0,
      "GPU verify accepts the frame");
  CK (cuMemsetD8 (ptr + uvoff + 5 * stride + 7, 0x00, 1));
  launch (f_vstamp, 1, 1, s, &a);
  launch (f_vpic, grid, block, s, &a);
  CK (cuMemcpyDtoHAsync (&res, resp, sizeof res, s));
  CK (cuStreamSynchronize (s));
  check (res.status == FH_OK && res.mismatches == 1,
      "GPU verify counts one corrupted UV byte");
  CK (cuMemsetD8 (ptr + 3 * stride + 9, 0x00, 1));
  launch (f_vstamp, 1, 1, s, &a);
  CK (cuMemcpyDtoHAsync (&res, resp, sizeof res, s));
  CK (cuStreamSynchronize (s));
  check (res.status == FH_BAD_CHECKSUM, "GPU verify: corrupted stamp byte fails the CRC");

  /* DMA-BUF export of the same allocation. */
  {
    CUresult r = cuMemGetHandleForAddressRange (&dfd, ptr, alloc,
        CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0);
    const char *nm = "?";
    cuGetErrorName (r, &nm);
    printf ("dmabuf_export %s\n", nm);
    if (r == CUDA_SUCCESS) {
      char path[64], line[256];
      FILE *fi;
      void *m;
      snprintf (path, sizeof path, "/proc/self/fdinfo/%d", dfd);
      fi = fopen (path, "r");
      while (fi && fgets (line, sizeof line, fi))
        printf ("dmabuf_fdinfo %s", line);
      if (fi)
        fclose (fi);
      m = mmap (NULL, alloc, PROT_READ, MAP_SHARED, dfd, 0);
      printf ("dmabuf_mmap %s errno %d (%s)\n", m == MAP_FAILED ? "failed" : "ok",
          m == MAP_FAILED ? errno : 0, m == MAP_FAILED ? strerror (errno) : "-");
      if (m != MAP_FAILED)
        munmap (m, alloc);
      close (dfd);
    }
  }

  CK (cuMemUnmap (ptr, alloc));
  CK (cuMemAddressFree (ptr, alloc));
  CK (cuMemRelease (h));
  close (fd);
  printf ("probe %s\n", failed ? "FAILED" : "ok");
  return failed;
}
