package fdpass

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/testutil"
)

func TestRecvTruncated(t *testing.T) {
	tests := []struct {
		name    string
		payload int
		buf     int
		nfds    int
		oob     int // control buffer size passed to recv; 0 means the default
	}{
		{"payload MSG_TRUNC", 100, 10, 3, 0},
		{"payload MSG_TRUNC no fds", 100, 10, 0, 0},
		{"control MSG_CTRUNC", 10, 64, 10, unix.CmsgSpace(2 * 4)},
		{"control MSG_CTRUNC no room", 10, 64, 4, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := pair(t)
			mfd := newMemfd(t, "x")
			fds := make([]int, tt.nfds)
			for i := range fds {
				fds[i] = mfd
			}
			before := testutil.CountOwnFDs(t)
			require.NoError(t, a.Send(make([]byte, tt.payload), fds))
			require.NoError(t, a.Send([]byte("next"), []int{mfd}))

			var oob []byte
			if tt.oob > 0 {
				oob = make([]byte, tt.oob)
			}
			n, got, err := b.recv(make([]byte, tt.buf), oob)
			require.ErrorIs(t, err, ErrTruncated)
			require.Zero(t, n)
			require.Nil(t, got)
			require.Equal(t, before, testutil.CountOwnFDs(t), "received fds leaked")

			// The connection is still usable; the next packet is intact.
			buf := make([]byte, 64)
			n, got, err = b.Recv(buf)
			require.NoError(t, err)
			require.Equal(t, "next", string(buf[:n]))
			require.Len(t, got, 1)
			CloseFDs(got)
			require.Equal(t, before, testutil.CountOwnFDs(t))
		})
	}
}

func TestParseRightsSeveralMessages(t *testing.T) {
	// Two SCM_RIGHTS messages with a foreign control message in between.
	buf := make([]byte, 256)
	m1 := putRights(buf, []int{3, 4})
	other := make([]byte, unix.CmsgSpace(4))
	h := putRights(other, []int{99})
	hdr := (*unix.Cmsghdr)(unsafe.Pointer(&h[0]))
	hdr.Type = unix.SCM_CREDENTIALS
	m2 := putRights(make([]byte, 64), []int{5})
	msg := append(append(append([]byte{}, m1...), h...), m2...)
	aligned := make([]byte, len(msg))
	copy(aligned, msg)

	fds, err := parseRights(aligned)
	require.NoError(t, err)
	require.Equal(t, []int{3, 4, 5}, fds)

	// A malformed trailing header yields the fds found so far and an error.
	bad := make([]byte, len(m1)+unix.SizeofCmsghdr)
	copy(bad, m1)
	badHdr := (*unix.Cmsghdr)(unsafe.Pointer(&bad[len(m1)]))
	badHdr.SetLen(1 << 20)
	fds, err = parseRights(bad)
	require.Error(t, err)
	require.Equal(t, []int{3, 4}, fds)
}

func TestRecvSeveralRightsOverSocket(t *testing.T) {
	a, b := pair(t)
	m1 := newMemfd(t, "one")
	m2 := newMemfd(t, "two")
	oob := append(putRights(make([]byte, 64), []int{m1}), putRights(make([]byte, 64), []int{m2, m1})...)
	rc, err := a.Unix().SyscallConn()
	require.NoError(t, err)
	var serr error
	require.NoError(t, rc.Control(func(fd uintptr) {
		_, serr = unix.SendmsgN(int(fd), []byte("multi"), oob, nil, unix.MSG_DONTWAIT)
	}))
	require.NoError(t, serr)

	buf := make([]byte, 16)
	n, got, err := b.Recv(buf)
	require.NoError(t, err)
	defer CloseFDs(got)
	require.Equal(t, "multi", string(buf[:n]))
	require.Len(t, got, 3)
	require.Equal(t, []string{"one", "two", "one"}, []string{readFD(t, got[0]), readFD(t, got[1]), readFD(t, got[2])})
}
