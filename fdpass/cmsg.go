package fdpass

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// oobSize is the control buffer size needed for MaxFDs descriptors.
func oobSize() int {
	return unix.CmsgSpace(MaxFDs * 4)
}

// putRights encodes one SCM_RIGHTS control message carrying fds into buf,
// which must hold at least unix.CmsgSpace(4*len(fds)) bytes and be suitably
// aligned, and returns the used prefix of buf.
func putRights(buf []byte, fds []int) []byte {
	datalen := len(fds) * 4
	b := buf[:unix.CmsgSpace(datalen)]
	clear(b)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.SOL_SOCKET
	h.Type = unix.SCM_RIGHTS
	h.SetLen(unix.CmsgLen(datalen))
	data := b[unix.CmsgLen(0):]
	for i, fd := range fds {
		binary.NativeEndian.PutUint32(data[4*i:], uint32(int32(fd)))
	}
	return b
}

// parseRights returns the descriptors in every SCM_RIGHTS control message
// in b. Other control messages are ignored. On a malformed message it
// returns the descriptors found so far together with an error, so that the
// caller can close them.
func parseRights(b []byte) ([]int, error) {
	var fds []int
	hdr := unix.CmsgLen(0)
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < hdr || l > len(b) {
			return fds, fmt.Errorf("malformed control message: length %d, %d bytes left", l, len(b))
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_RIGHTS {
			data := b[hdr:l]
			if fds == nil {
				fds = make([]int, 0, len(data)/4)
			}
			for i := 0; i+4 <= len(data); i += 4 {
				fds = append(fds, int(int32(binary.NativeEndian.Uint32(data[i:]))))
			}
		}
		next := unix.CmsgSpace(l - hdr)
		if next >= len(b) {
			break
		}
		b = b[next:]
	}
	return fds, nil
}
