//go:build jetson

package media

// adoptNVMM: built with the jetson tag, the jetson-csi source hands
// memory:NVMM buffers to the raw appsink and their DMA-BUFs are adopted as
// they are (internal/gst/fhgst_nvmm.c reads NvBufSurface) instead of being
// converted into system memory. Compiled and unit-tested in CI with a
// synthetic NVMM memory; not run on Jetson hardware.
const adoptNVMM = true
