/*
 * libcuda.c: a stand-in for the NVIDIA driver's libcuda.so.1, for machines
 * without a GPU (CI). It implements every entry point package internal/cuda
 * resolves (cuda.SymbolNames), with the semantics framehub relies on:
 *
 *  - "device memory" is host memory: a cuMemCreate allocation is a memfd
 *    (named "framehub-cuda-standin"), a device address is a host address,
 *    cuMemAddressReserve reserves PROT_NONE address space, cuMemMap maps the
 *    memfd there (MAP_SHARED, inaccessible until cuMemSetAccess, which
 *    mprotects it read-only or read-write), cuMemUnmap puts the reservation
 *    back, cuMemAddressFree unmaps it;
 *  - cuMemExportToShareableHandle returns a dup of the memfd, so the fd
 *    crosses processes with SCM_RIGHTS like the driver's; an allocation
 *    lives while any fd, handle or mapping of it does, as on a GPU;
 *    cuMemImportFromShareableHandle accepts only such fds;
 *  - a context must be current on the calling thread (cuCtxSetCurrent is
 *    per thread, as in CUDA): memory, stream, module and launch calls made
 *    without one fail with CUDA_ERROR_INVALID_CONTEXT, and every call before
 *    cuInit with CUDA_ERROR_NOT_INITIALIZED, so the Go binding's thread
 *    handling is exercised;
 *  - cuModuleLoadData accepts PTX text (it must declare .version and
 *    .target) and records its .entry names; cuModuleGetFunction finds those
 *    that this library implements in C: the kernels of
 *    internal/gpuframe/kernels.h, the same per-thread code the PTX is
 *    compiled from. cuLaunchKernel runs a 1-D launch's threads one after the
 *    other, at once, on the calling thread; streams are therefore always
 *    idle and cuStreamSynchronize only checks its arguments.
 *
 * Differences from the driver, on purpose: one device; a reservation holds
 * at most one mapping; cuMemGetHandleForAddressRange returns a dup of the
 * memfd for a range that starts at a mapping's start (a real DMA-BUF of
 * device memory cannot be mmap'd by the CPU; this one can: tests check that
 * framehub refuses to map it, not that the kernel does); a kernel that
 * writes through a read-only mapping gets SIGSEGV instead of an error.
 *
 * The device's UUID is $FRAMEHUB_STANDIN_UUID (32 hex digits) when set, so
 * a test can give two processes different devices.
 *
 * Built by package internal/cuda/standin (Build) with:
 *   gcc -shared -fPIC -O2 -o libcuda.so.1 libcuda.c -I<dir of kernels.h>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels.h"

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef unsigned long long CUmemGenericAllocationHandle;

enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_INVALID_VALUE = 1,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CUDA_ERROR_NOT_INITIALIZED = 3,
  CUDA_ERROR_INVALID_DEVICE = 101,
  CUDA_ERROR_INVALID_CONTEXT = 201,
  CUDA_ERROR_INVALID_PTX = 218,
  CUDA_ERROR_OPERATING_SYSTEM = 304,
  CUDA_ERROR_INVALID_HANDLE = 400,
  CUDA_ERROR_NOT_FOUND = 500,
  CUDA_ERROR_NOT_SUPPORTED = 801,
};

#define GRANULARITY (2u << 20)
#define MEMFD_NAME "framehub-cuda-standin"
#define MAX_OBJS 4096

typedef struct {
  int type, requested_handle_types, location_type, location_id;
  void *win32;
  unsigned char compression, rdma;
  unsigned short usage;
  unsigned char reserved[4];
} prop_t;

typedef struct {
  int location_type, location_id;
  unsigned flags;
} access_t;

typedef struct {
  int fd;
  size_t size;
  int exportable;
} alloc_t;

typedef struct {
  uintptr_t ptr;
  size_t size;
  int map_fd;                   /* dup of the mapped allocation's memfd, -1 when unmapped */
  size_t map_size;
} resv_t;

typedef struct {
  uintptr_t ptr;
  size_t size;
} devmem_t;

typedef struct {
  int magic;
} stream_t;

typedef struct {
  char **names;
  int n;
} module_t;

typedef void (*kernel_fn) (const fh_args *, unsigned long long threads);

typedef struct {
  const char *name;
  kernel_fn fn;
} func_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int initialized;
static int primary_refs;
static int primary;             /* its address is the context handle */
static __thread void *current;

/* Every live object, by kind, so that a stale or foreign handle is an
 * error, not a crash. */
typedef struct {
  void *slot[MAX_OBJS];
} table_t;

static table_t allocs, resvs, devmems, streams, modules;

static int
tbl_add (table_t * t, void *p)
{
  int i;
  pthread_mutex_lock (&mu);
  for (i = 0; i < MAX_OBJS; i++)
    if (!t->slot[i]) {
      t->slot[i] = p;
      pthread_mutex_unlock (&mu);
      return 1;
    }
  pthread_mutex_unlock (&mu);
  return 0;
}

static int
tbl_del (table_t * t, void *p)
{
  int i;
  if (!p)
    return 0;
  pthread_mutex_lock (&mu);
  for (i = 0; i < MAX_OBJS; i++)
    if (t->slot[i] == p) {
      t->slot[i] = NULL;
      pthread_mutex_unlock (&mu);
      return 1;
    }
  pthread_mutex_unlock (&mu);
  return 0;
}

static int
tbl_has (table_t * t, const void *p)
{
  int i, ok = 0;
  if (!p)
    return 0;
  pthread_mutex_lock (&mu);
  for (i = 0; i < MAX_OBJS && !ok; i++)
    ok = t->slot[i] == p;
  pthread_mutex_unlock (&mu);
  return ok;
}

#define NEED_INIT() do { if (!initialized) return CUDA_ERROR_NOT_INITIALIZED; } while (0)
#define NEED_CTX() do { NEED_INIT (); if (current != &primary || primary_refs == 0) return CUDA_ERROR_INVALID_CONTEXT; } while (0)

CUresult
cuInit (unsigned flags)
{
  if (flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  initialized = 1;
  return CUDA_SUCCESS;
}

CUresult
cuDriverGetVersion (int *v)
{
  if (!v)
    return CUDA_ERROR_INVALID_VALUE;
  *v = 13000;
  return CUDA_SUCCESS;
}

static const struct {
  int code;
  const char *name, *desc;
} errors[] = {
  {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
  {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
  {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
  {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
  {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
  {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
  {CUDA_ERROR_INVALID_PTX, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
  {CUDA_ERROR_OPERATING_SYSTEM, "CUDA_ERROR_OPERATING_SYSTEM", "OS call failed or operation not supported on this OS"},
  {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
  {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
  {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
};

CUresult
cuGetErrorName (CUresult r, const char **s)
{
  size_t i;
  for (i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (errors[i].code == r) {
      *s = errors[i].name;
      return CUDA_SUCCESS;
    }
  *s = NULL;
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult
cuGetErrorString (CUresult r, const char **s)
{
  size_t i;
  for (i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (errors[i].code == r) {
      *s = errors[i].desc;
      return CUDA_SUCCESS;
    }
  *s = NULL;
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult
cuDeviceGetCount (int *n)
{
  NEED_INIT ();
  *n = 1;
  return CUDA_SUCCESS;
}

CUresult
cuDeviceGet (int *dev, int ordinal)
{
  NEED_INIT ();
  if (ordinal != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  *dev = 0;
  return CUDA_SUCCESS;
}

CUresult
cuDeviceGetName (char *name, int len, int dev)
{
  NEED_INIT ();
  if (dev != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  if (len <= 0)
    return CUDA_ERROR_INVALID_VALUE;
  snprintf (name, len, "framehub stand-in (CPU, no GPU)");
  return CUDA_SUCCESS;
}

CUresult
cuDeviceGetUuid_v2 (unsigned char *uuid, int dev)
{
  const char *env = getenv ("FRAMEHUB_STANDIN_UUID");
  int i;
  NEED_INIT ();
  if (dev != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  memcpy (uuid, "fh-standin-gpu-0", 16);
  if (env && strlen (env) == 32)
    for (i = 0; i < 16; i++) {
      unsigned v;
      if (sscanf (env + 2 * i, "%2x", &v) != 1)
        return CUDA_ERROR_INVALID_VALUE;
      uuid[i] = (unsigned char) v;
    }
  return CUDA_SUCCESS;
}

CUresult
cuDeviceTotalMem_v2 (size_t *bytes, int dev)
{
  NEED_INIT ();
  if (dev != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  *bytes = (size_t) 1 << 30;
  return CUDA_SUCCESS;
}

CUresult
cuDeviceGetAttribute (int *v, int attr, int dev)
{
  NEED_INIT ();
  if (dev != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  switch (attr) {
    case 75:                   /* compute capability major */
      *v = 9;
      break;
    case 102:                  /* virtual memory management */
    case 103:                  /* POSIX fd handles */
    case 124:                  /* DMA-BUF */
    case 16:                   /* multiprocessors */
      *v = 1;
      break;
    default:
      *v = 0;
  }
  return CUDA_SUCCESS;
}

CUresult
cuDevicePrimaryCtxRetain (void **ctx, int dev)
{
  NEED_INIT ();
  if (dev != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  pthread_mutex_lock (&mu);
  primary_refs++;
  pthread_mutex_unlock (&mu);
  *ctx = &primary;
  return CUDA_SUCCESS;
}

CUresult
cuDevicePrimaryCtxRelease_v2 (int dev)
{
  NEED_INIT ();
  if (dev != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  pthread_mutex_lock (&mu);
  if (primary_refs == 0) {
    pthread_mutex_unlock (&mu);
    return CUDA_ERROR_INVALID_CONTEXT;
  }
  primary_refs--;
  pthread_mutex_unlock (&mu);
  return CUDA_SUCCESS;
}

CUresult
cuDevicePrimaryCtxSetFlags_v2 (int dev, unsigned flags)
{
  NEED_INIT ();
  if (dev != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  /* Only the scheduling flags; the stand-in never waits. */
  if (flags != 0 && flags != 1 && flags != 2 && flags != 4)
    return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult
cuCtxSetCurrent (void *ctx)
{
  NEED_INIT ();
  if (ctx != NULL && ctx != &primary)
    return CUDA_ERROR_INVALID_CONTEXT;
  current = ctx;
  return CUDA_SUCCESS;
}

static int
valid_prop (const prop_t * p)
{
  return p && p->type == 1 && p->location_type == 1 && p->location_id == 0;
}

CUresult
cuMemGetAllocationGranularity (size_t *g, const prop_t * p, int option)
{
  NEED_CTX ();
  if (!valid_prop (p) || (option != 0 && option != 1))
    return CUDA_ERROR_INVALID_VALUE;
  *g = GRANULARITY;
  return CUDA_SUCCESS;
}

CUresult
cuMemCreate (CUmemGenericAllocationHandle * h, size_t size,
    const prop_t * p, unsigned long long flags)
{
  alloc_t *a;
  NEED_CTX ();
  if (!valid_prop (p) || flags != 0 || size == 0 || size % GRANULARITY)
    return CUDA_ERROR_INVALID_VALUE;
  a = calloc (1, sizeof *a);
  a->fd = memfd_create (MEMFD_NAME, MFD_CLOEXEC);
  if (a->fd < 0 || ftruncate (a->fd, (off_t) size) < 0) {
    if (a->fd >= 0)
      close (a->fd);
    free (a);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  a->size = size;
  a->exportable = p->requested_handle_types & 1;
  if (!tbl_add (&allocs, a)) {
    close (a->fd);
    free (a);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *h = (CUmemGenericAllocationHandle) (uintptr_t) a;
  return CUDA_SUCCESS;
}

CUresult
cuMemRelease (CUmemGenericAllocationHandle h)
{
  alloc_t *a = (alloc_t *) (uintptr_t) h;
  NEED_CTX ();
  if (!tbl_del (&allocs, a))
    return CUDA_ERROR_INVALID_HANDLE;
  close (a->fd);
  free (a);
  return CUDA_SUCCESS;
}

CUresult
cuMemExportToShareableHandle (void *out, CUmemGenericAllocationHandle h,
    int type, unsigned long long flags)
{
  alloc_t *a = (alloc_t *) (uintptr_t) h;
  int fd;
  NEED_CTX ();
  if (!tbl_has (&allocs, a))
    return CUDA_ERROR_INVALID_HANDLE;
  if (type != 1 || flags != 0 || !a->exportable)
    return CUDA_ERROR_INVALID_VALUE;
  fd = fcntl (a->fd, F_DUPFD, 0);
  if (fd < 0)
    return CUDA_ERROR_OPERATING_SYSTEM;
  *(int *) out = fd;
  return CUDA_SUCCESS;
}

/* is_ours reports whether fd is a memfd this library created. */
static int
is_ours (int fd)
{
  char link[64], target[256];
  ssize_t n;
  snprintf (link, sizeof link, "/proc/self/fd/%d", fd);
  n = readlink (link, target, sizeof target - 1);
  if (n <= 0)
    return 0;
  target[n] = 0;
  return strncmp (target, "/memfd:" MEMFD_NAME, strlen ("/memfd:" MEMFD_NAME)) == 0;
}

CUresult
cuMemImportFromShareableHandle (CUmemGenericAllocationHandle * h, void *os,
    int type)
{
  int fd = (int) (intptr_t) os;
  struct stat st;
  alloc_t *a;
  NEED_CTX ();
  if (type != 1 || fd < 0 || !is_ours (fd) || fstat (fd, &st) < 0)
    return CUDA_ERROR_INVALID_VALUE;
  a = calloc (1, sizeof *a);
  a->fd = fcntl (fd, F_DUPFD_CLOEXEC, 0);
  a->size = (size_t) st.st_size;
  a->exportable = 1;
  if (a->fd < 0 || !tbl_add (&allocs, a)) {
    if (a->fd >= 0)
      close (a->fd);
    free (a);
    return CUDA_ERROR_OPERATING_SYSTEM;
  }
  *h = (CUmemGenericAllocationHandle) (uintptr_t) a;
  return CUDA_SUCCESS;
}

/* find_resv returns the reservation containing [p, p+size), or NULL. */
static resv_t *
find_resv (uintptr_t p, size_t size)
{
  resv_t *found = NULL;
  int i;
  pthread_mutex_lock (&mu);
  for (i = 0; i < MAX_OBJS && !found; i++) {
    resv_t *r = resvs.slot[i];
    if (r && p >= r->ptr && p - r->ptr + size <= r->size)
      found = r;
  }
  pthread_mutex_unlock (&mu);
  return found;
}

CUresult
cuMemAddressReserve (CUdeviceptr * out, size_t size, size_t align,
    CUdeviceptr addr, unsigned long long flags)
{
  resv_t *r;
  void *m;
  (void) addr;
  NEED_CTX ();
  if (size == 0 || size % GRANULARITY || (align & (align - 1)) || flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  m = mmap (NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
      -1, 0);
  if (m == MAP_FAILED)
    return CUDA_ERROR_OUT_OF_MEMORY;
  r = calloc (1, sizeof *r);
  r->ptr = (uintptr_t) m;
  r->size = size;
  r->map_fd = -1;
  if (!tbl_add (&resvs, r)) {
    munmap (m, size);
    free (r);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *out = (CUdeviceptr) r->ptr;
  return CUDA_SUCCESS;
}

CUresult
cuMemAddressFree (CUdeviceptr p, size_t size)
{
  resv_t *r;
  NEED_CTX ();
  r = find_resv ((uintptr_t) p, size);
  if (!r || r->ptr != p || r->size != size || r->map_fd >= 0)
    return CUDA_ERROR_INVALID_VALUE;
  tbl_del (&resvs, r);
  munmap ((void *) r->ptr, r->size);
  free (r);
  return CUDA_SUCCESS;
}

CUresult
cuMemMap (CUdeviceptr p, size_t size, size_t offset,
    CUmemGenericAllocationHandle h, unsigned long long flags)
{
  alloc_t *a = (alloc_t *) (uintptr_t) h;
  resv_t *r;
  NEED_CTX ();
  if (!tbl_has (&allocs, a))
    return CUDA_ERROR_INVALID_HANDLE;
  r = find_resv ((uintptr_t) p, size);
  if (!r || r->ptr != p || offset != 0 || flags != 0 || size == 0 || size > a->size
      || size % GRANULARITY)
    return CUDA_ERROR_INVALID_VALUE;
  if (r->map_fd >= 0)
    return CUDA_ERROR_NOT_SUPPORTED;
  if (mmap ((void *) p, size, PROT_NONE, MAP_SHARED | MAP_FIXED, a->fd,
          0) == MAP_FAILED)
    return CUDA_ERROR_OUT_OF_MEMORY;
  r->map_fd = fcntl (a->fd, F_DUPFD_CLOEXEC, 0);
  r->map_size = size;
  return CUDA_SUCCESS;
}

CUresult
cuMemSetAccess (CUdeviceptr p, size_t size, const access_t * desc,
    size_t count)
{
  resv_t *r;
  int prot;
  NEED_CTX ();
  r = find_resv ((uintptr_t) p, size);
  if (!r || r->ptr != p || r->map_fd < 0 || size != r->map_size || count != 1 || !desc
      || desc->location_type != 1 || desc->location_id != 0)
    return CUDA_ERROR_INVALID_VALUE;
  switch (desc->flags) {
    case 0:
      prot = PROT_NONE;
      break;
    case 1:
      prot = PROT_READ;
      break;
    case 3:
      prot = PROT_READ | PROT_WRITE;
      break;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
  if (mprotect ((void *) p, size, prot) < 0)
    return CUDA_ERROR_OPERATING_SYSTEM;
  return CUDA_SUCCESS;
}

CUresult
cuMemUnmap (CUdeviceptr p, size_t size)
{
  resv_t *r;
  NEED_CTX ();
  r = find_resv ((uintptr_t) p, size);
  if (!r || r->ptr != p || r->map_fd < 0 || size != r->map_size)
    return CUDA_ERROR_INVALID_VALUE;
  if (mmap ((void *) p, size, PROT_NONE,
          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
          0) == MAP_FAILED)
    return CUDA_ERROR_OPERATING_SYSTEM;
  close (r->map_fd);
  r->map_fd = -1;
  r->map_size = 0;
  return CUDA_SUCCESS;
}

CUresult
cuMemGetHandleForAddressRange (void *out, CUdeviceptr p, size_t size,
    int type, unsigned long long flags)
{
  resv_t *r;
  int fd;
  NEED_CTX ();
  if (type != 1 || flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  r = find_resv ((uintptr_t) p, size);
  if (!r || r->ptr != p || r->map_fd < 0 || size > r->map_size)
    return CUDA_ERROR_INVALID_VALUE;
  fd = fcntl (r->map_fd, F_DUPFD, 0);
  if (fd < 0)
    return CUDA_ERROR_OPERATING_SYSTEM;
  *(int *) out = fd;
  return CUDA_SUCCESS;
}

CUresult
cuMemAlloc_v2 (CUdeviceptr * out, size_t size)
{
  devmem_t *m;
  void *p;
  NEED_CTX ();
  if (size == 0)
    return CUDA_ERROR_INVALID_VALUE;
  p = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
      -1, 0);
  if (p == MAP_FAILED)
    return CUDA_ERROR_OUT_OF_MEMORY;
  m = calloc (1, sizeof *m);
  m->ptr = (uintptr_t) p;
  m->size = size;
  if (!tbl_add (&devmems, m)) {
    munmap (p, size);
    free (m);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *out = (CUdeviceptr) m->ptr;
  return CUDA_SUCCESS;
}

CUresult
cuMemFree_v2 (CUdeviceptr p)
{
  devmem_t *found = NULL;
  int i;
  NEED_CTX ();
  pthread_mutex_lock (&mu);
  for (i = 0; i < MAX_OBJS && !found; i++) {
    devmem_t *m = devmems.slot[i];
    if (m && m->ptr == p) {
      found = m;
      devmems.slot[i] = NULL;
    }
  }
  pthread_mutex_unlock (&mu);
  if (!found)
    return CUDA_ERROR_INVALID_VALUE;
  munmap ((void *) found->ptr, found->size);
  free (found);
  return CUDA_SUCCESS;
}

CUresult
cuMemcpyDtoH_v2 (void *dst, CUdeviceptr src, size_t n)
{
  NEED_CTX ();
  if (!dst || !src)
    return CUDA_ERROR_INVALID_VALUE;
  memcpy (dst, (const void *) (uintptr_t) src, n);
  return CUDA_SUCCESS;
}

CUresult
cuMemcpyHtoD_v2 (CUdeviceptr dst, const void *src, size_t n)
{
  NEED_CTX ();
  if (!dst || !src)
    return CUDA_ERROR_INVALID_VALUE;
  memcpy ((void *) (uintptr_t) dst, src, n);
  return CUDA_SUCCESS;
}

CUresult
cuStreamCreate (void **out, unsigned flags)
{
  stream_t *s;
  NEED_CTX ();
  if (flags > 1)
    return CUDA_ERROR_INVALID_VALUE;
  s = calloc (1, sizeof *s);
  s->magic = 0x5757;
  if (!tbl_add (&streams, s)) {
    free (s);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *out = s;
  return CUDA_SUCCESS;
}

CUresult
cuStreamDestroy_v2 (void *s)
{
  NEED_CTX ();
  if (!tbl_del (&streams, s))
    return CUDA_ERROR_INVALID_HANDLE;
  free (s);
  return CUDA_SUCCESS;
}

CUresult
cuStreamSynchronize (void *s)
{
  NEED_CTX ();
  if (s != NULL && !tbl_has (&streams, s))
    return CUDA_ERROR_INVALID_HANDLE;
  return CUDA_SUCCESS;
}

/* The kernels this library implements, by their PTX entry names. */

static void
run_render_picture (const fh_args * a, unsigned long long threads)
{
  unsigned long long t;
  for (t = 0; t < threads; t++)
    fh_render_picture_thread (a, (fh_u32) t);
}

static void
run_verify_picture (const fh_args * a, unsigned long long threads)
{
  unsigned long long t;
  for (t = 0; t < threads; t++)
    fh_verify_picture_thread (a, (fh_u32) t);
}

static void
run_render_stamp (const fh_args * a, unsigned long long threads)
{
  (void) threads;
  fh_render_stamp_thread (a);
}

static void
run_verify_stamp (const fh_args * a, unsigned long long threads)
{
  (void) threads;
  fh_verify_stamp_thread (a);
}

static const func_t kernels[] = {
  {"fh_render_picture", run_render_picture},
  {"fh_render_stamp", run_render_stamp},
  {"fh_verify_stamp", run_verify_stamp},
  {"fh_verify_picture", run_verify_picture},
};

static void
free_module (module_t * m)
{
  int i;
  for (i = 0; i < m->n; i++)
    free (m->names[i]);
  free (m->names);
  free (m);
}

CUresult
cuModuleLoadData (void **out, const void *image)
{
  const char *s = image, *p;
  module_t *m;
  NEED_CTX ();
  if (!s)
    return CUDA_ERROR_INVALID_VALUE;
  if (!strstr (s, ".version") || !strstr (s, ".target"))
    return CUDA_ERROR_INVALID_PTX;
  m = calloc (1, sizeof *m);
  for (p = strstr (s, ".entry"); p; p = strstr (p, ".entry")) {
    const char *b;
    p += strlen (".entry");
    while (*p == ' ' || *p == '\t')
      p++;
    b = p;
    while (*p == '_' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z')
        || (*p >= 'A' && *p <= 'Z') || *p == '$')
      p++;
    if (p == b)
      continue;
    m->names = realloc (m->names, (m->n + 1) * sizeof *m->names);
    m->names[m->n++] = strndup (b, (size_t) (p - b));
  }
  if (!tbl_add (&modules, m)) {
    free_module (m);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *out = m;
  return CUDA_SUCCESS;
}

CUresult
cuModuleUnload (void *mod)
{
  NEED_CTX ();
  if (!tbl_del (&modules, mod))
    return CUDA_ERROR_INVALID_HANDLE;
  free_module (mod);
  return CUDA_SUCCESS;
}

CUresult
cuModuleGetFunction (const func_t ** out, void *mod, const char *name)
{
  module_t *m = mod;
  size_t k;
  int i;
  NEED_CTX ();
  if (!tbl_has (&modules, m) || !name)
    return CUDA_ERROR_INVALID_HANDLE;
  for (i = 0; i < m->n; i++)
    if (strcmp (m->names[i], name) == 0)
      break;
  if (i == m->n)
    return CUDA_ERROR_NOT_FOUND;
  for (k = 0; k < sizeof kernels / sizeof kernels[0]; k++)
    if (strcmp (kernels[k].name, name) == 0) {
      *out = &kernels[k];
      return CUDA_SUCCESS;
    }
  fprintf (stderr, "libcuda stand-in: kernel %s is in the module but has no C implementation here\n", name);
  return CUDA_ERROR_NOT_FOUND;
}

static int
is_kernel (const func_t * f)
{
  size_t k;
  for (k = 0; k < sizeof kernels / sizeof kernels[0]; k++)
    if (f == &kernels[k])
      return 1;
  return 0;
}

CUresult
cuLaunchKernel (const func_t * f, unsigned gx, unsigned gy, unsigned gz,
    unsigned bx, unsigned by, unsigned bz, unsigned shmem, void *stream,
    void **params, void **extra)
{
  fh_args a;
  NEED_CTX ();
  if (!is_kernel (f))
    return CUDA_ERROR_INVALID_HANDLE;
  if (stream != NULL && !tbl_has (&streams, stream))
    return CUDA_ERROR_INVALID_HANDLE;
  if (!params || extra || shmem || gx == 0 || bx == 0 || bx > 1024)
    return CUDA_ERROR_INVALID_VALUE;
  if (gy != 1 || gz != 1 || by != 1 || bz != 1)
    return CUDA_ERROR_NOT_SUPPORTED;    /* the kernels are 1-D */
  a.base = *(fh_u64 *) params[0];
  a.width = *(fh_u32 *) params[1];
  a.height = *(fh_u32 *) params[2];
  a.y_off = *(fh_u32 *) params[3];
  a.y_stride = *(fh_u32 *) params[4];
  a.uv_off = *(fh_u32 *) params[5];
  a.uv_stride = *(fh_u32 *) params[6];
  a.seq = *(fh_u64 *) params[7];
  a.mono = *(fh_i64 *) params[8];
  a.result = *(fh_u64 *) params[9];
  f->fn (&a, (unsigned long long) gx * bx);
  return CUDA_SUCCESS;
}
