package cuda

// sym indexes the driver entry points this package calls.
type sym int

// The entry points, by the names libcuda.so.1 exports. Those with a _v2
// suffix are what cuda.h's macros map the plain names to: the unsuffixed
// symbols still exported keep an older ABI (32-bit sizes, the legacy default
// stream) and must not be called.
const (
	symInit sym = iota
	symDriverGetVersion
	symGetErrorName
	symGetErrorString
	symDeviceGetCount
	symDeviceGet
	symDeviceGetName
	symDeviceGetUuid
	symDeviceGetAttribute
	symDeviceTotalMem
	symDevicePrimaryCtxRetain
	symDevicePrimaryCtxRelease
	symDevicePrimaryCtxSetFlags
	symCtxSetCurrent
	symMemGetAllocationGranularity
	symMemCreate
	symMemRelease
	symMemExportToShareableHandle
	symMemImportFromShareableHandle
	symMemAddressReserve
	symMemAddressFree
	symMemMap
	symMemUnmap
	symMemSetAccess
	symMemGetHandleForAddressRange
	symMemAlloc
	symMemFree
	symMemcpyDtoH
	symMemcpyHtoD
	symStreamCreate
	symStreamDestroy
	symStreamSynchronize
	symModuleLoadData
	symModuleUnload
	symModuleGetFunction
	symLaunchKernel
	numSyms
)

// symNames are the exported names, indexed by sym. The stand-in library
// (internal/cuda/standin) implements exactly these.
var symNames = [numSyms]string{
	symInit:                         "cuInit",
	symDriverGetVersion:             "cuDriverGetVersion",
	symGetErrorName:                 "cuGetErrorName",
	symGetErrorString:               "cuGetErrorString",
	symDeviceGetCount:               "cuDeviceGetCount",
	symDeviceGet:                    "cuDeviceGet",
	symDeviceGetName:                "cuDeviceGetName",
	symDeviceGetUuid:                "cuDeviceGetUuid_v2",
	symDeviceGetAttribute:           "cuDeviceGetAttribute",
	symDeviceTotalMem:               "cuDeviceTotalMem_v2",
	symDevicePrimaryCtxRetain:       "cuDevicePrimaryCtxRetain",
	symDevicePrimaryCtxRelease:      "cuDevicePrimaryCtxRelease_v2",
	symDevicePrimaryCtxSetFlags:     "cuDevicePrimaryCtxSetFlags_v2",
	symCtxSetCurrent:                "cuCtxSetCurrent",
	symMemGetAllocationGranularity:  "cuMemGetAllocationGranularity",
	symMemCreate:                    "cuMemCreate",
	symMemRelease:                   "cuMemRelease",
	symMemExportToShareableHandle:   "cuMemExportToShareableHandle",
	symMemImportFromShareableHandle: "cuMemImportFromShareableHandle",
	symMemAddressReserve:            "cuMemAddressReserve",
	symMemAddressFree:               "cuMemAddressFree",
	symMemMap:                       "cuMemMap",
	symMemUnmap:                     "cuMemUnmap",
	symMemSetAccess:                 "cuMemSetAccess",
	symMemGetHandleForAddressRange:  "cuMemGetHandleForAddressRange",
	symMemAlloc:                     "cuMemAlloc_v2",
	symMemFree:                      "cuMemFree_v2",
	symMemcpyDtoH:                   "cuMemcpyDtoH_v2",
	symMemcpyHtoD:                   "cuMemcpyHtoD_v2",
	symStreamCreate:                 "cuStreamCreate",
	symStreamDestroy:                "cuStreamDestroy_v2",
	symStreamSynchronize:            "cuStreamSynchronize",
	symModuleLoadData:               "cuModuleLoadData",
	symModuleUnload:                 "cuModuleUnload",
	symModuleGetFunction:            "cuModuleGetFunction",
	symLaunchKernel:                 "cuLaunchKernel",
}

// SymbolNames returns the driver entry points the package uses, in a fixed
// order: what a stand-in library must export.
func SymbolNames() []string { return append([]string(nil), symNames[:]...) }

// Driver API constants (cuda.h).
const (
	memAllocationTypePinned    = 1   // CU_MEM_ALLOCATION_TYPE_PINNED
	memHandleTypePosixFD       = 1   // CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
	memLocationTypeDevice      = 1   // CU_MEM_LOCATION_TYPE_DEVICE
	memAllocGranularityMinimum = 0   // CU_MEM_ALLOC_GRANULARITY_MINIMUM
	memRangeHandleTypeDMABufFD = 1   // CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD
	streamNonBlocking          = 1   // CU_STREAM_NON_BLOCKING
	attrComputeCapabilityMajor = 75  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
	attrComputeCapabilityMinor = 76  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
	attrIntegrated             = 18  // CU_DEVICE_ATTRIBUTE_INTEGRATED
	attrPCIBusID               = 33  // CU_DEVICE_ATTRIBUTE_PCI_BUS_ID
	attrPCIDeviceID            = 34  // CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID
	attrPCIDomainID            = 50  // CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID
	attrVMM                    = 102 // CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED
	attrPosixFD                = 103 // CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED
	attrDMABuf                 = 124 // CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED
)

// memAllocationProp mirrors CUmemAllocationProp (32 bytes on 64-bit).
type memAllocationProp struct {
	typ                  uint32
	requestedHandleTypes uint32
	locationType         uint32
	locationID           int32
	win32HandleMetaData  uintptr
	compressionType      uint8
	gpuDirectRDMACapable uint8
	usage                uint16
	reserved             [4]uint8
}

// memAccessDesc mirrors CUmemAccessDesc (12 bytes).
type memAccessDesc struct {
	locationType uint32
	locationID   int32
	flags        uint32
}
