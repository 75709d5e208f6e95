package cuda

import (
	"encoding/hex"
	"fmt"
	"strings"
	"unsafe"
)

// UUID identifies a GPU (cuDeviceGetUuid_v2; nvidia-smi shows it as
// GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx). Unlike an ordinal it does not
// change with CUDA_VISIBLE_DEVICES, so it is what processes exchange.
type UUID [16]byte

// String formats u as nvidia-smi does.
func (u UUID) String() string {
	h := hex.EncodeToString(u[:])
	return "GPU-" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ParseUUID accepts the 16 raw bytes of a UUID (as ipc.Device carries it)
// or its text form, with or without the "GPU-" prefix and dashes.
func ParseUUID(b []byte) (UUID, error) {
	var u UUID
	if len(b) == len(u) {
		copy(u[:], b)
		return u, nil
	}
	s := strings.ReplaceAll(strings.TrimPrefix(string(b), "GPU-"), "-", "")
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != len(u) {
		return u, fmt.Errorf("cuda: device UUID %q: want 16 bytes or 32 hex digits", b)
	}
	copy(u[:], raw)
	return u, nil
}

// Device describes one GPU as the driver reports it.
type Device struct {
	Ordinal  int    // index under this process's CUDA_VISIBLE_DEVICES
	Name     string // e.g. "NVIDIA H100 80GB HBM3"
	UUID     UUID
	Major    int    // compute capability
	Minor    int    //
	TotalMem uint64 // bytes
	PCI      string // domain:bus:device, e.g. "0000:01:00"
	// Integrated is true for a GPU that shares the host's memory (Jetson).
	Integrated bool
	// VMM: the virtual memory management API (cuMemCreate, cuMemMap) works.
	VMM bool
	// PosixFD: VMM allocations can be exported as POSIX file descriptors.
	PosixFD bool
	// DMABuf: device memory can be exported as DMA-BUF
	// (cuMemGetHandleForAddressRange).
	DMABuf bool
}

// DeviceCount returns how many GPUs this process sees.
func (d *Driver) DeviceCount() (int, error) {
	var n int32
	if r := d.call(symDeviceGetCount, uintptr(unsafe.Pointer(&n))); r != Success {
		return 0, d.err(r, "cuDeviceGetCount")
	}
	return int(n), nil
}

// Device describes the GPU at ordinal.
func (d *Driver) Device(ordinal int) (Device, error) {
	var h int32
	if r := d.call(symDeviceGet, uintptr(unsafe.Pointer(&h)), uintptr(ordinal)); r != Success {
		return Device{}, d.err(r, fmt.Sprintf("cuDeviceGet(%d)", ordinal))
	}
	dev := Device{Ordinal: int(h)}
	name := make([]byte, 256)
	if r := d.call(symDeviceGetName, uintptr(unsafe.Pointer(&name[0])), uintptr(len(name)), uintptr(h)); r != Success {
		return Device{}, d.err(r, fmt.Sprintf("cuDeviceGetName(device %d)", ordinal))
	}
	if i := strings.IndexByte(string(name), 0); i >= 0 {
		name = name[:i]
	}
	dev.Name = string(name)
	if r := d.call(symDeviceGetUuid, uintptr(unsafe.Pointer(&dev.UUID)), uintptr(h)); r != Success {
		return Device{}, d.err(r, fmt.Sprintf("cuDeviceGetUuid_v2(device %d)", ordinal))
	}
	var total uintptr
	if r := d.call(symDeviceTotalMem, uintptr(unsafe.Pointer(&total)), uintptr(h)); r != Success {
		return Device{}, d.err(r, fmt.Sprintf("cuDeviceTotalMem_v2(device %d)", ordinal))
	}
	dev.TotalMem = uint64(total)
	attrs := []struct {
		attr int
		dst  *int
	}{{attrComputeCapabilityMajor, &dev.Major}, {attrComputeCapabilityMinor, &dev.Minor}}
	for _, a := range attrs {
		v, err := d.attribute(h, a.attr)
		if err != nil {
			return Device{}, err
		}
		*a.dst = v
	}
	var pci [3]int
	for i, a := range []int{attrPCIDomainID, attrPCIBusID, attrPCIDeviceID} {
		if pci[i], _ = d.attribute(h, a); pci[i] < 0 {
			pci[i] = 0
		}
	}
	dev.PCI = fmt.Sprintf("%04x:%02x:%02x", pci[0], pci[1], pci[2])
	for _, a := range []struct {
		attr int
		dst  *bool
	}{{attrIntegrated, &dev.Integrated}, {attrVMM, &dev.VMM}, {attrPosixFD, &dev.PosixFD}, {attrDMABuf, &dev.DMABuf}} {
		v, err := d.attribute(h, a.attr)
		if err != nil {
			return Device{}, err
		}
		*a.dst = v != 0
	}
	return dev, nil
}

func (d *Driver) attribute(dev int32, attr int) (int, error) {
	var v int32
	if r := d.call(symDeviceGetAttribute, uintptr(unsafe.Pointer(&v)), uintptr(attr), uintptr(dev)); r != Success {
		return 0, d.err(r, fmt.Sprintf("cuDeviceGetAttribute(%d, device %d)", attr, dev))
	}
	return int(v), nil
}

// Devices describes every GPU this process sees.
func (d *Driver) Devices() ([]Device, error) {
	n, err := d.DeviceCount()
	if err != nil {
		return nil, err
	}
	out := make([]Device, 0, n)
	for i := range n {
		dev, err := d.Device(i)
		if err != nil {
			return nil, err
		}
		out = append(out, dev)
	}
	return out, nil
}

// DeviceByUUID returns the GPU with UUID u. The error lists the UUIDs this
// process sees when none matches (another machine's surface, or the device
// hidden by CUDA_VISIBLE_DEVICES).
func (d *Driver) DeviceByUUID(u UUID) (Device, error) {
	devs, err := d.Devices()
	if err != nil {
		return Device{}, err
	}
	seen := make([]string, 0, len(devs))
	for _, dev := range devs {
		if dev.UUID == u {
			return dev, nil
		}
		seen = append(seen, dev.UUID.String())
	}
	return Device{}, fmt.Errorf("cuda: no device with UUID %v in this process (it sees %d: %s; check CUDA_VISIBLE_DEVICES)",
		u, len(devs), strings.Join(seen, ", "))
}

// MarshalText formats u as String does (for JSON reports).
func (u UUID) MarshalText() ([]byte, error) { return []byte(u.String()), nil }
