//go:build jetson

package gst

// #include <stdint.h>
// #include <gst/gst.h>
// GstBuffer *fh_test_nvmm_buffer (int fd, uint32_t size, uint32_t w, uint32_t h,
//     uint32_t pitch, uint32_t uv_offset, int layout, uint32_t batch);
import "C"

// NewTestNVMMBuffer makes a buffer shaped like a Jetson memory:NVMM one
// (build tag jetson): one "nvmm" memory whose bytes are an NvBufSurface
// of a w×h NV12 surface in dma-buf fd (borrowed: keep it open while the
// buffer lives). layout 0 is pitch-linear, 1 block-linear; batch is the
// surface's batch size. The caller owns the buffer.
func NewTestNVMMBuffer(fd, size, w, h, pitch, uvOffset, layout, batch int) *Buffer {
	return &Buffer{b: C.fh_test_nvmm_buffer(C.int(fd), C.uint32_t(size), C.uint32_t(w), C.uint32_t(h),
		C.uint32_t(pitch), C.uint32_t(uvOffset), C.int(layout), C.uint32_t(batch))}
}
