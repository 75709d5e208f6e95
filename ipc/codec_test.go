package ipc_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/framehub/framehub/ipc"
)

// nv12Planes is the layout of a 1920×1080 NV12 frame as
// producer/surface.NV12(1920, 1080, 64) computes it.
var nv12Planes = []ipc.Plane{
	{Offset: 0, Stride: 1920, Size: 1920 * 1080},
	{Offset: 2076672, Stride: 1920, Size: 1920 * 540},
}

const nv12SurfaceSize = 3117056

// casesMessages holds realistic values of every message type: one table
// for the round-trip and differential tests, the byte-exact examples of
// PROTOCOL.md §4 (the cases with a doc title, TestProtocolDocExamples) and
// the fuzz corpus in testdata/fuzz/FuzzDecode (TestFuzzCorpus).
var casesMessages = []struct {
	name string
	doc  string // the title of the case's example in PROTOCOL.md §4, up to its " {"
	msg  ipc.Message
}{
	{"Hello/queue", "", &ipc.Hello{
		Major: 1, Minor: 0, Name: "detector", Stream: "raw",
		MaxInFlight: 4, MaxHoldMS: 2000, Policy: ipc.PolicyQueue,
	}},
	{"Hello/latest", "Hello", &ipc.Hello{Major: 1, Minor: 0, Name: "det", Stream: "raw", MaxInFlight: 4, MaxHoldMS: 2000, Policy: ipc.PolicyLatest}},
	{"Hello/default-policy-lossless-replay", "", &ipc.Hello{
		Major: 1, Minor: 3, Name: "recorder", Stream: "h264",
		Policy: "", Flags: ipc.HelloLossless, ReplayFromNS: 86_400_000_000_000,
	}},
	{"Hello/release-ring", "", &ipc.Hello{Major: 1, Name: "det", Stream: "raw", MaxInFlight: 4, Flags: ipc.HelloReleaseRing}},
	{"Welcome", "", &ipc.Welcome{
		Major: 1, Minor: 0, Session: 42, Stream: "raw",
		MaxInFlight: 4, MaxHoldMS: 2000, Policy: ipc.PolicyQueue, Flags: 0,
		Caps: ipc.Caps{Format: "NV12", Width: 1920, Height: 1080, FPSNum: 30, FPSDen: 1, Planes: nv12Planes},
		Pool: ipc.Pool{Min: 2, Max: 8, SurfaceSize: nv12SurfaceSize, Kind: ipc.KindMemfd},
	}},
	{"Welcome/latest", "Welcome", &ipc.Welcome{
		Major: 1, Minor: 0, Session: 7, Stream: "raw", MaxInFlight: 4, MaxHoldMS: 2000, Policy: ipc.PolicyLatest,
		Caps: ipc.Caps{Format: "NV12", Width: 1920, Height: 1080, FPSNum: 30, FPSDen: 1, Planes: []ipc.Plane{
			{Offset: 0, Stride: 1920, Size: 2073600}, {Offset: 2076672, Stride: 1920, Size: 1036800},
		}},
		Pool: ipc.Pool{Min: 0, Max: 8, SurfaceSize: 3117056, Kind: ipc.KindMemfd},
	}},
	{"Welcome/h264-lossless", "", &ipc.Welcome{
		Major: 1, Minor: 0, Session: 1 << 40, Stream: "h264",
		MaxInFlight: 32, MaxHoldMS: 60_000, Policy: ipc.PolicyLatest, Flags: ipc.HelloLossless,
		Caps: ipc.Caps{Format: "H264", Width: 1280, Height: 720, FPSNum: 30000, FPSDen: 1001, Codec: "avc1.64001f"},
		Pool: ipc.Pool{Min: 0, Max: 16, SurfaceSize: 1 << 20, Kind: ipc.KindDMABuf},
	}},
	{"Reject/version", "", &ipc.Reject{Code: ipc.CodeVersion, Reason: "protocol version 2.0 not supported; this producer speaks 1.x"}},
	{"Reject/unknown-stream", "", &ipc.Reject{Code: ipc.CodeUnknownStream, Reason: `no stream "depth" (streams: [h264 raw])`}},
	{"Reject/short", "Reject", &ipc.Reject{Code: ipc.CodeUnknownStream, Reason: "no stream"}},
	{"Announce/one", "", &ipc.Announce{Surfaces: []ipc.Surface{
		{ID: 1, Gen: 1, Size: nv12SurfaceSize, Kind: ipc.KindMemfd, NFDs: 1},
	}}},
	{"Announce/two", "Announce", &ipc.Announce{Surfaces: []ipc.Surface{
		{ID: 1, Gen: 1, Size: 3117056, Kind: ipc.KindMemfd, NFDs: 1},
		{ID: 2, Gen: 1, Size: 3117056, Kind: ipc.KindMemfd, NFDs: 1},
	}}},
	{"Announce/several", "", &ipc.Announce{Surfaces: []ipc.Surface{
		{ID: 1, Gen: 1, Size: nv12SurfaceSize, Kind: ipc.KindMemfd, NFDs: 1},
		{ID: 2, Gen: 3, Size: nv12SurfaceSize, Kind: ipc.KindMemfd, NFDs: 1},
		{ID: 7, Gen: 1, Size: 8 << 20, Kind: ipc.KindDMABuf, NFDs: 2},
		{ID: 1 << 31, Gen: 1<<32 - 1, Size: 1 << 33, Kind: ipc.KindDMABuf, NFDs: 4},
	}}},
	{"Announce/gpu", "", &ipc.Announce{Surfaces: []ipc.Surface{
		{ID: 1, Gen: 1, Size: 12 << 20, Kind: ipc.KindCUDA, NFDs: 1, Device: &ipc.Device{UUID: []byte("0123456789abcdef"), NoCPUMap: true}},
		{ID: 2, Gen: 1, Size: 12 << 20, Kind: ipc.KindDMABuf, NFDs: 1, Device: &ipc.Device{UUID: []byte("0123456789abcdef"), NoCPUMap: true}},
		{ID: 3, Gen: 1, Size: 4 << 20, Kind: ipc.KindDMABuf, NFDs: 1, Device: &ipc.Device{UUID: []byte("fedcba9876543210")}},
	}}},
	{"Frame/raw", "", &ipc.Frame{
		Lease: 17, Surface: 3, Gen: 1, Seq: 1042, Offset: 0, Size: nv12SurfaceSize,
		PTS: 34_700_000_000, DTS: -1, Dur: 33_333_333,
		MonoNS: 123_456_789_012_345, RealNS: 1_763_766_000_123_456_789,
		Flags: ipc.FlagDiscont, Dropped: 2,
	}},
	{"Frame/discont", "Frame", &ipc.Frame{
		Lease: 5, Surface: 2, Gen: 1, Seq: 1042, Offset: 0, Size: 3117056, PTS: -1, DTS: -1, Dur: -1,
		MonoNS: 123456789012345, RealNS: 1763766000123456789, Flags: ipc.FlagDiscont, Dropped: 3,
	}},
	{"Frame/planes-meta", "", &ipc.Frame{
		Lease: 1<<63 + 5, Surface: 9, Gen: 2, Seq: 1 << 40, Offset: 4096, Size: 3110400,
		PTS: -1, DTS: -1, Dur: -1, MonoNS: 987_654_321, RealNS: -1,
		Flags: ipc.FlagReplay,
		Planes: []ipc.Plane{
			{Offset: 4096, Stride: 2048, Size: 2048 * 1080, FD: 0},
			{Offset: 0, Stride: 2048, Size: 2048 * 540, FD: 1},
		},
		Meta: map[string][]byte{
			"roi":         {0, 0, 0x07, 0x80, 0x04, 0x38},
			"exposure_us": []byte("8000"),
			"empty":       {},
		},
	}},
	{"Frame/h264-keyframe", "", &ipc.Frame{
		Lease: 2, Surface: 1, Gen: 1, Seq: 300, Offset: 0, Size: 48_213,
		PTS: 10_000_000_000, DTS: 9_966_666_667, Dur: 33_333_333,
		MonoNS: 55_000_000_000, RealNS: 1_763_766_000_000_000_000,
		Flags: ipc.FlagKeyframe | ipc.FlagHeader,
	}},
	{"Frame/h264-meta", "Frame of an H.264 stream", &ipc.Frame{
		Lease: 9, Surface: 1, Gen: 1, Seq: 300, Offset: 0, Size: 48213, PTS: 10000000000, DTS: 9966666667, Dur: 33333333,
		MonoNS: 55000000000, RealNS: 1763766000000000000, Flags: ipc.FlagKeyframe | ipc.FlagHeader,
		Meta: map[string][]byte{"cam": []byte("front")},
	}},
	{"Forget", "", &ipc.Forget{IDs: []uint32{3, 4, 1 << 20}}},
	{"Forget/two", "Forget", &ipc.Forget{IDs: []uint32{3, 4}}},
	{"Caps/raw", "", &ipc.Caps{Format: "NV12", Width: 1920, Height: 1080, FPSNum: 30, FPSDen: 1, Planes: nv12Planes}},
	{"Caps/h264", "", &ipc.Caps{Format: "H264", Width: 3840, Height: 2160, FPSNum: 60, FPSDen: 1, Codec: "avc1.640033"}},
	{"Caps/h264-720p", "Caps", &ipc.Caps{Format: "H264", Width: 1280, Height: 720, FPSNum: 30000, FPSDen: 1001, Codec: "avc1.64001f"}},
	{"EOS", "", &ipc.EOS{Reason: "camera lost: /dev/video0 disconnected"}},
	{"EOS/short", "EOS", &ipc.EOS{Reason: "camera lost"}},
	{"Release/batch", "", &ipc.Release{Leases: []uint64{17, 18, 19, 1 << 33, 1<<64 - 1}}},
	{"Release/three", "Release", &ipc.Release{Leases: []uint64{5, 6, 7}}},
	{"Release/empty-nil", "", &ipc.Release{}},
	{"Release/empty-array", "", &ipc.Release{Leases: []uint64{}}},
	{"RequestKeyframe", "RequestKeyframe", &ipc.RequestKeyframe{}},
	{"Ping", "", &ipc.Ping{Token: 7, MonoNS: 123_456_789_000}},
	{"Ping/doc", "Ping", &ipc.Ping{Token: 1, MonoNS: 123456789000}},
	{"Pong", "", &ipc.Pong{Token: 7, MonoNS: 123_456_789_000}},
	{"Pong/doc", "Pong", &ipc.Pong{Token: 1, MonoNS: 123456789000}},
	{"Bye/max-hold", "", &ipc.Bye{Code: ipc.CodeMaxHold, Reason: "a lease was held longer than max_hold (2s)"}},
	{"Bye/short", "Bye", &ipc.Bye{Code: ipc.CodeMaxHold, Reason: "max_hold"}},
	{"Bye/ok", "", &ipc.Bye{Code: ipc.CodeOK}},
	{"Ring", "Ring", &ipc.Ring{Size: 4096}},
}

// caseMsg returns the message of the case called name.
func caseMsg(t testing.TB, name string) ipc.Message {
	t.Helper()
	for _, tc := range casesMessages {
		if tc.name == name {
			return tc.msg
		}
	}
	t.Fatalf("no case %q", name)
	return nil
}

func encode(t testing.TB, c *ipc.Codec, m ipc.Message) []byte {
	t.Helper()
	p, err := c.Encode(m)
	require.NoError(t, err)
	return p
}

// body returns a packet: tag followed by the msgpack encoding of v (a
// map[string]any built by hand, encoded with msgpack's defaults, which use
// fixed-width ints).
func body(t testing.TB, tag ipc.Type, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return append([]byte{byte(tag)}, b...)
}

func TestCasesCoverEveryType(t *testing.T) {
	seen := map[ipc.Type]bool{}
	for _, tc := range casesMessages {
		seen[tc.msg.Type()] = true
	}
	for tag := ipc.TypeHello; tag <= ipc.TypeRing; tag++ {
		require.True(t, seen[tag], "casesMessages has no %v", tag)
	}
}

func TestRoundTrip(t *testing.T) {
	c := ipc.NewCodec()
	for _, tc := range casesMessages {
		t.Run(tc.name, func(t *testing.T) {
			p := encode(t, c, tc.msg)
			require.Equal(t, byte(tc.msg.Type()), p[0], "first byte is the type tag")
			require.LessOrEqual(t, len(p), ipc.MaxMessageSize)

			got, err := c.Decode(p)
			require.NoError(t, err)
			require.Equal(t, tc.msg, got)

			// The decoded message does not reference the packet.
			clear(p)
			require.Equal(t, tc.msg, got)

			// Append appends to dst and encodes the same bytes.
			prefix := []byte("xyz")
			q, err := c.Append(prefix, tc.msg)
			require.NoError(t, err)
			require.Equal(t, "xyz", string(q[:3]))
			got2, err := c.Decode(q[3:])
			require.NoError(t, err)
			require.Equal(t, tc.msg, got2)
		})
	}
}

// TestEncodeDeterministic checks that equal messages encode to equal bytes,
// also with several Meta keys (written in sorted order).
func TestEncodeDeterministic(t *testing.T) {
	c := ipc.NewCodec()
	for _, tc := range casesMessages {
		first := encode(t, c, tc.msg)
		for range 20 {
			require.Equal(t, first, encode(t, c, tc.msg), tc.name)
		}
	}
}

func TestEncodeConcurrent(t *testing.T) {
	c := ipc.NewCodec()
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			defer func() { done <- err }()
			for i := range 200 {
				tc := casesMessages[(g+i)%len(casesMessages)]
				var p []byte
				if p, err = c.Encode(tc.msg); err != nil {
					return
				}
				var m ipc.Message
				if m, err = c.Decode(p); err != nil {
					return
				}
				if m.Type() != tc.msg.Type() {
					err = fmt.Errorf("%s: decoded %v", tc.name, m.Type())
					return
				}
			}
		}()
	}
	for range 4 {
		require.NoError(t, <-done)
	}
}

func TestDecodeErrors(t *testing.T) {
	c := ipc.NewCodec()
	hello := encode(t, c, casesMessages[0].msg)
	tooManyFDs := make([]map[string]any, 64) // 64 × 4 = 256 fds > 253
	for i := range tooManyFDs {
		tooManyFDs[i] = map[string]any{"id": i + 1, "gen": 1, "size": 4096, "kind": 1, "nfds": 4}
	}
	fivePlanes := make([]map[string]any, 5)
	for i := range fivePlanes {
		fivePlanes[i] = map[string]any{"offset": i * 4096, "stride": 64, "size": 4096}
	}
	oversize := make([]byte, ipc.MaxMessageSize+1)
	oversize[0] = byte(ipc.TypeFrame)

	cases := []struct {
		name string
		p    []byte
		tag  ipc.Type // expected DecodeError.Type
		is   error    // sentinel, or nil for a msgpack error
	}{
		{"empty", nil, 0, ipc.ErrEmpty},
		{"empty-non-nil", []byte{}, 0, ipc.ErrEmpty},
		{"too-large", oversize, ipc.TypeFrame, ipc.ErrTooLarge},
		{"too-large-unknown-tag", append([]byte{200}, oversize[1:]...), 200, ipc.ErrTooLarge},
		{"trailing", append(bytes.Clone(hello), 0x00), ipc.TypeHello, ipc.ErrTrailing},
		{"trailing-second-map", append(bytes.Clone(hello), hello[1:]...), ipc.TypeHello, ipc.ErrTrailing},
		{"tag-only", []byte{byte(ipc.TypePing)}, ipc.TypePing, nil},
		{"hello-major-string", body(t, ipc.TypeHello, map[string]any{"major": "1", "stream": "raw"}), ipc.TypeHello, nil},
		{"hello-name-int", body(t, ipc.TypeHello, map[string]any{"major": 1, "name": 5}), ipc.TypeHello, nil},
		{"hello-major-float", body(t, ipc.TypeHello, map[string]any{"major": 1.0}), ipc.TypeHello, nil},
		{"hello-body-string", body(t, ipc.TypeHello, "hello"), ipc.TypeHello, nil},
		{"hello-body-int", body(t, ipc.TypeHello, 1), ipc.TypeHello, nil},
		{"hello-key-int", []byte{byte(ipc.TypeHello), 0x81, 0x01, 0x01}, ipc.TypeHello, nil},
		{"release-leases-map", body(t, ipc.TypeRelease, map[string]any{"leases": map[string]any{"1": 1}}), ipc.TypeRelease, nil},
		{"release-leases-string", body(t, ipc.TypeRelease, map[string]any{"leases": "1,2"}), ipc.TypeRelease, nil},
		{"release-lease-string", body(t, ipc.TypeRelease, map[string]any{"leases": []any{1, "2"}}), ipc.TypeRelease, nil},
		{"frame-meta-array", body(t, ipc.TypeFrame, map[string]any{"meta": []any{1}}), ipc.TypeFrame, nil},
		{"frame-meta-value-int", body(t, ipc.TypeFrame, map[string]any{"meta": map[string]any{"k": 1}}), ipc.TypeFrame, nil},
		{"welcome-caps-string", body(t, ipc.TypeWelcome, map[string]any{"caps": "NV12"}), ipc.TypeWelcome, nil},
		{"announce-surfaces-string", body(t, ipc.TypeAnnounce, map[string]any{"surfaces": "x"}), ipc.TypeAnnounce, nil},
		{"forget-ids-negative-string", body(t, ipc.TypeForget, map[string]any{"ids": []any{"-1"}}), ipc.TypeForget, nil},
		{"announce-missing-surfaces", body(t, ipc.TypeAnnounce, map[string]any{}), ipc.TypeAnnounce, ipc.ErrInvalid},
		{"announce-no-surfaces", body(t, ipc.TypeAnnounce, map[string]any{"surfaces": []any{}}), ipc.TypeAnnounce, ipc.ErrInvalid},
		{"announce-nfds-0", body(t, ipc.TypeAnnounce, map[string]any{"surfaces": []any{
			map[string]any{"id": 1, "gen": 1, "size": 4096, "kind": 1, "nfds": 0},
		}}), ipc.TypeAnnounce, ipc.ErrInvalid},
		{"announce-nfds-missing", body(t, ipc.TypeAnnounce, map[string]any{"surfaces": []any{
			map[string]any{"id": 1, "gen": 1, "size": 4096, "kind": 1},
		}}), ipc.TypeAnnounce, ipc.ErrInvalid},
		{"announce-nfds-5", body(t, ipc.TypeAnnounce, map[string]any{"surfaces": []any{
			map[string]any{"id": 1, "gen": 1, "size": 4096, "kind": 2, "nfds": 5},
		}}), ipc.TypeAnnounce, ipc.ErrInvalid},
		{"announce-kind-9", body(t, ipc.TypeAnnounce, map[string]any{"surfaces": []any{
			map[string]any{"id": 1, "gen": 1, "size": 4096, "kind": 1, "nfds": 1},
			map[string]any{"id": 2, "gen": 1, "size": 4096, "kind": 9, "nfds": 1},
		}}), ipc.TypeAnnounce, ipc.ErrInvalid},
		{"announce-kind-0", body(t, ipc.TypeAnnounce, map[string]any{"surfaces": []any{
			map[string]any{"id": 1, "gen": 1, "size": 4096, "nfds": 1},
		}}), ipc.TypeAnnounce, ipc.ErrInvalid},
		{"announce-256-fds", body(t, ipc.TypeAnnounce, map[string]any{"surfaces": tooManyFDs}), ipc.TypeAnnounce, ipc.ErrInvalid},
		{"announce-cuda-no-device", body(t, ipc.TypeAnnounce, map[string]any{"surfaces": []any{
			map[string]any{"id": 1, "gen": 1, "size": 2 << 20, "kind": 3, "nfds": 1},
		}}), ipc.TypeAnnounce, ipc.ErrInvalid},
		{"announce-cuda-2-fds", body(t, ipc.TypeAnnounce, map[string]any{"surfaces": []any{
			map[string]any{"id": 1, "gen": 1, "size": 2 << 20, "kind": 3, "nfds": 2, "device": map[string]any{"uuid": []byte("0123456789abcdef")}},
		}}), ipc.TypeAnnounce, ipc.ErrInvalid},
		{"announce-device-uuid-15", body(t, ipc.TypeAnnounce, map[string]any{"surfaces": []any{
			map[string]any{"id": 1, "gen": 1, "size": 2 << 20, "kind": 2, "nfds": 1, "device": map[string]any{"uuid": []byte("0123456789abcde")}},
		}}), ipc.TypeAnnounce, ipc.ErrInvalid},
		{"announce-device-not-map", body(t, ipc.TypeAnnounce, map[string]any{"surfaces": []any{
			map[string]any{"id": 1, "gen": 1, "size": 2 << 20, "kind": 3, "nfds": 1, "device": "GPU-0"},
		}}), ipc.TypeAnnounce, nil},
		{"hello-unknown-policy", body(t, ipc.TypeHello, map[string]any{"major": 1, "stream": "raw", "policy": "newest"}), ipc.TypeHello, ipc.ErrInvalid},
		{"hello-policy-case", body(t, ipc.TypeHello, map[string]any{"major": 1, "policy": "Queue"}), ipc.TypeHello, ipc.ErrInvalid},
		{"caps-5-planes", body(t, ipc.TypeCaps, map[string]any{"format": "NV12", "planes": fivePlanes}), ipc.TypeCaps, ipc.ErrInvalid},
		{"welcome-caps-5-planes", body(t, ipc.TypeWelcome, map[string]any{"major": 1, "caps": map[string]any{"planes": fivePlanes}}), ipc.TypeWelcome, ipc.ErrInvalid},
		{"frame-5-planes", body(t, ipc.TypeFrame, map[string]any{"lease": 1, "planes": fivePlanes}), ipc.TypeFrame, ipc.ErrInvalid},
		{"welcome-caps-array", body(t, ipc.TypeWelcome, map[string]any{"caps": []any{"NV12", 1920, 1080}}), ipc.TypeWelcome, ipc.ErrMalformed},
		{"welcome-pool-array", body(t, ipc.TypeWelcome, map[string]any{"pool": []any{}}), ipc.TypeWelcome, ipc.ErrMalformed},
		{"announce-surface-array", body(t, ipc.TypeAnnounce, map[string]any{"surfaces": []any{[]any{1, 1, 4096, 1, 1}}}), ipc.TypeAnnounce, ipc.ErrMalformed},
		{"hello-key-nil", []byte{byte(ipc.TypeHello), 0x81, 0xc0, 0x01}, ipc.TypeHello, ipc.ErrMalformed},
		{"hello-unused-byte", []byte{byte(ipc.TypeHello), 0x81, 0xa1, 'x', 0xc1}, ipc.TypeHello, ipc.ErrMalformed},
		{"release-lease-missing", []byte{byte(ipc.TypeRelease), 0x81, 0xa6, 'l', 'e', 'a', 's', 'e', 's', 0x92, 0x01}, ipc.TypeRelease, ipc.ErrLength},
	}
	cases = append(cases, struct {
		name string
		p    []byte
		tag  ipc.Type
		is   error
	}{"nested-deeper-than-MaxDepth", nested(ipc.MaxDepth + 1), ipc.TypeEOS, ipc.ErrInvalid})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := c.Decode(tc.p)
			require.Error(t, err)
			require.Nil(t, m)
			var de *ipc.DecodeError
			require.ErrorAs(t, err, &de)
			require.Equal(t, tc.tag, de.Type)
			require.Equal(t, len(tc.p), de.Len)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Contains(t, err.Error(), tc.tag.String(), "the message names the type")
			require.Contains(t, err.Error(), strconv.Itoa(len(tc.p))+" bytes")
		})
	}
}

// nested returns an EOS packet whose body map holds, under an unknown key,
// arrays nested so that there are n containers in all, the body map included.
func nested(n int) []byte {
	p := []byte{byte(ipc.TypeEOS), 0x82, 0xa6, 'r', 'e', 'a', 's', 'o', 'n', 0xa1, 'z', 0xa1, 'x'}
	for range n - 1 {
		p = append(p, 0x91)
	}
	return append(p, 0x01)
}

// TestDecodeTruncated cuts every encoded case at every length: each prefix
// is a *DecodeError, never a panic and never a message.
func TestDecodeTruncated(t *testing.T) {
	c := ipc.NewCodec()
	for _, tc := range casesMessages {
		p := encode(t, c, tc.msg)
		for n := 1; n < len(p); n++ {
			m, err := c.Decode(p[:n])
			require.Nil(t, m, "%s cut at %d of %d", tc.name, n, len(p))
			var de *ipc.DecodeError
			require.ErrorAs(t, err, &de, "%s cut at %d of %d", tc.name, n, len(p))
			require.Equal(t, tc.msg.Type(), de.Type)
			require.Contains(t, err.Error(), tc.msg.Type().String())
		}
	}
}

// hugeLengthCases are packets whose msgpack headers declare far more elements
// or bytes than the packet holds. A decoder must fail on them quickly and
// without allocating memory in proportion to the declared length: a consumer
// could otherwise take the producer down with a 14-byte Release.
var hugeLengthCases = []struct {
	name string
	p    []byte
}{
	{"release-leases-array32-max", []byte{byte(ipc.TypeRelease), 0x81, 0xa6, 'l', 'e', 'a', 's', 'e', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}},
	{"release-leases-array32-256M", []byte{byte(ipc.TypeRelease), 0x81, 0xa6, 'l', 'e', 'a', 's', 'e', 's', 0xdd, 0x10, 0x00, 0x00, 0x00}},
	{"release-leases-array16-max", []byte{byte(ipc.TypeRelease), 0x81, 0xa6, 'l', 'e', 'a', 's', 'e', 's', 0xdc, 0xff, 0xff}},
	{"forget-ids-array32", []byte{byte(ipc.TypeForget), 0x81, 0xa3, 'i', 'd', 's', 0xdd, 0x7f, 0xff, 0xff, 0xff}},
	{"announce-surfaces-array32", []byte{byte(ipc.TypeAnnounce), 0x81, 0xa8, 's', 'u', 'r', 'f', 'a', 'c', 'e', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}},
	{"frame-planes-array32", []byte{byte(ipc.TypeFrame), 0x81, 0xa6, 'p', 'l', 'a', 'n', 'e', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}},
	{"frame-meta-map32", []byte{byte(ipc.TypeFrame), 0x81, 0xa4, 'm', 'e', 't', 'a', 0xdf, 0xff, 0xff, 0xff, 0xff}},
	{"frame-meta-bin32", []byte{byte(ipc.TypeFrame), 0x81, 0xa4, 'm', 'e', 't', 'a', 0x81, 0xa1, 'k', 0xc6, 0xff, 0xff, 0xff, 0xff}},
	{"hello-body-map32", []byte{byte(ipc.TypeHello), 0xdf, 0xff, 0xff, 0xff, 0xff}},
	{"hello-name-str32", []byte{byte(ipc.TypeHello), 0x81, 0xa4, 'n', 'a', 'm', 'e', 0xdb, 0xff, 0xff, 0xff, 0xff}},
	{"hello-unknown-key-array32", []byte{byte(ipc.TypeHello), 0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff}},
	{"hello-unknown-key-bin32", []byte{byte(ipc.TypeHello), 0x81, 0xa1, 'x', 0xc6, 0xff, 0xff, 0xff, 0xff}},
	{"hello-key-str32", []byte{byte(ipc.TypeHello), 0x81, 0xdb, 0xff, 0xff, 0xff, 0xff}},
}

const hugeChildEnv = "FRAMEHUB_IPC_HUGE_CHILD"

// TestDecodeHugeLengths decodes hugeLengthCases in a child process, because
// the failure it guards against is a fatal "out of memory" that no recover
// can catch and that would take the whole test binary down. The child names
// each case on stderr before decoding it, so a crash names its input.
func TestDecodeHugeLengths(t *testing.T) {
	if os.Getenv(hugeChildEnv) != "" {
		hugeChild(t)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDecodeHugeLengths$", "-test.count=1")
	cmd.Env = append(os.Environ(), hugeChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		first, _, _ := strings.Cut(string(out), "\n\n")
		t.Fatalf("child process failed: %v\n%s", err, first)
	}
}

func hugeChild(t *testing.T) {
	limitAddressSpace(t, 1<<30)
	c := ipc.NewCodec()
	for _, tc := range hugeLengthCases {
		fmt.Fprintf(os.Stderr, "decoding %s: %x (%d bytes)\n", tc.name, tc.p, len(tc.p))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		m, err := c.Decode(tc.p)
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		var de *ipc.DecodeError
		require.ErrorAs(t, err, &de, tc.name)
		require.Nil(t, m, tc.name)
		alloc := after.TotalAlloc - before.TotalAlloc
		require.Less(t, alloc, uint64(16<<20), "%s: decoding %d bytes allocated %d bytes", tc.name, len(tc.p), alloc)
		require.Less(t, took, time.Second, tc.name)
	}
}

// limitAddressSpace caps the process's address space at its current size
// plus extra bytes, so that a runaway allocation fails at once (a fatal error
// of this child process) instead of paging gigabytes in on a shared machine.
func limitAddressSpace(t *testing.T, extra uint64) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Logf("no address space limit: %v", err)
		return
	}
	var vmKB uint64
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			vmKB, err = strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err, "VmSize in %q", line)
		}
	}
	require.NotZero(t, vmKB, "no VmSize in /proc/self/status")
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_AS, &lim))
	lim.Cur = min(lim.Max, vmKB<<10+extra)
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_AS, &lim))
}

func TestDecodeUnknownType(t *testing.T) {
	c := ipc.NewCodec()
	hello := encode(t, c, casesMessages[0].msg)
	bodies := map[string][]byte{
		"none":     nil,
		"map":      hello[1:],
		"garbage":  {0xc1, 0xff, 0x00},
		"trailing": append(bytes.Clone(hello[1:]), 1, 2, 3),
		"max-size": make([]byte, ipc.MaxMessageSize-1),
	}
	for _, tag := range []ipc.Type{0, 15, 200, 255} {
		for name, b := range bodies {
			t.Run(fmt.Sprintf("%d/%s", tag, name), func(t *testing.T) {
				m, err := c.Decode(append([]byte{byte(tag)}, b...))
				require.NoError(t, err)
				require.Equal(t, &ipc.Unknown{Tag: tag}, m)
				require.Equal(t, tag, m.Type())
			})
		}
	}
}

func TestDecodeForwardCompatible(t *testing.T) {
	c := ipc.NewCodec()
	t.Run("unknown-keys-ignored", func(t *testing.T) {
		p := body(t, ipc.TypeHello, map[string]any{
			"major": 1, "minor": 7, "name": "next-gen", "stream": "raw",
			"max_in_flight": 2, "max_hold_ms": 1000, "policy": "latest", "flags": 1,
			"priority": 5,
			"hints":    map[string]any{"roi": []any{1, 2, 3, 4}, "nested": map[string]any{"deep": []byte{1, 2}}},
			"gpu":      nil,
			"labels":   []string{"a", "b"},
		})
		m, err := c.Decode(p)
		require.NoError(t, err)
		require.Equal(t, &ipc.Hello{
			Major: 1, Minor: 7, Name: "next-gen", Stream: "raw",
			MaxInFlight: 2, MaxHoldMS: 1000, Policy: ipc.PolicyLatest, Flags: ipc.HelloLossless,
		}, m)
	})
	t.Run("missing-keys-zero", func(t *testing.T) {
		p := body(t, ipc.TypeHello, map[string]any{"major": 1, "stream": "raw"})
		m, err := c.Decode(p)
		require.NoError(t, err)
		require.Equal(t, &ipc.Hello{Major: 1, Stream: "raw"}, m)
	})
	t.Run("empty-map", func(t *testing.T) {
		for tag := ipc.TypeHello; tag <= ipc.TypeRing; tag++ {
			if tag == ipc.TypeAnnounce {
				continue // needs at least one surface
			}
			m, err := c.Decode([]byte{byte(tag), 0x80})
			require.NoError(t, err, "%v", tag)
			require.Equal(t, tag, m.Type())
		}
	})
	t.Run("nil-is-zero", func(t *testing.T) {
		p := body(t, ipc.TypeWelcome, map[string]any{"major": 1, "session": nil, "stream": nil, "caps": nil, "pool": nil})
		m, err := c.Decode(p)
		require.NoError(t, err)
		require.Equal(t, &ipc.Welcome{Major: 1}, m)
		p = body(t, ipc.TypeAnnounce, map[string]any{"surfaces": []any{
			map[string]any{"id": 1, "gen": nil, "size": 4096, "kind": 1, "nfds": 1, "device": nil},
		}})
		m, err = c.Decode(p)
		require.NoError(t, err)
		require.Equal(t, &ipc.Announce{Surfaces: []ipc.Surface{{ID: 1, Size: 4096, Kind: ipc.KindMemfd, NFDs: 1}}}, m)
		p = body(t, ipc.TypeFrame, map[string]any{"lease": 3, "planes": nil, "meta": map[string]any{"a": nil, "b": "str"}})
		m, err = c.Decode(p)
		require.NoError(t, err)
		require.Equal(t, &ipc.Frame{Lease: 3, Meta: map[string][]byte{"a": nil, "b": []byte("str")}}, m)
	})
	t.Run("unknown-keys-in-nested-maps", func(t *testing.T) {
		p := body(t, ipc.TypeAnnounce, map[string]any{"surfaces": []any{
			map[string]any{"id": 1, "gen": 2, "size": 4096, "kind": 1, "nfds": 1, "modifier": uint64(1) << 56},
		}})
		m, err := c.Decode(p)
		require.NoError(t, err)
		require.Equal(t, &ipc.Announce{Surfaces: []ipc.Surface{{ID: 1, Gen: 2, Size: 4096, Kind: ipc.KindMemfd, NFDs: 1}}}, m)
	})
	t.Run("nesting-up-to-MaxDepth", func(t *testing.T) {
		m, err := c.Decode(nested(ipc.MaxDepth))
		require.NoError(t, err)
		require.Equal(t, &ipc.EOS{Reason: "z"}, m)
	})
	t.Run("key-order-free", func(t *testing.T) {
		// Keys in reverse order of the encoder's.
		p := []byte{byte(ipc.TypePing), 0x82, 0xa7, 'm', 'o', 'n', 'o', '_', 'n', 's', 0x05, 0xa5, 't', 'o', 'k', 'e', 'n', 0x09}
		m, err := c.Decode(p)
		require.NoError(t, err)
		require.Equal(t, &ipc.Ping{Token: 9, MonoNS: 5}, m)
	})
}

// TestDecodeIntWidths checks that every msgpack integer encoding of a value is
// accepted, whatever width the sender chose.
func TestDecodeIntWidths(t *testing.T) {
	c := ipc.NewCodec()
	key := []byte{0xa5, 't', 'o', 'k', 'e', 'n'}
	for _, enc := range [][]byte{
		{0x07},
		{0xcc, 0x07},
		{0xcd, 0x00, 0x07},
		{0xce, 0x00, 0x00, 0x00, 0x07},
		{0xcf, 0, 0, 0, 0, 0, 0, 0, 0x07},
		{0xd0, 0x07},
		{0xd1, 0x00, 0x07},
		{0xd2, 0x00, 0x00, 0x00, 0x07},
		{0xd3, 0, 0, 0, 0, 0, 0, 0, 0x07},
	} {
		p := append([]byte{byte(ipc.TypePing), 0x81}, key...)
		p = append(p, enc...)
		m, err := c.Decode(p)
		require.NoError(t, err, "%x", enc)
		require.Equal(t, &ipc.Ping{Token: 7}, m, "%x", enc)
	}
	// Negative numbers in signed fields, in every signed width.
	for _, enc := range [][]byte{{0xff}, {0xd0, 0xff}, {0xd1, 0xff, 0xff}, {0xd2, 0xff, 0xff, 0xff, 0xff}, {0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		p := append([]byte{byte(ipc.TypeFrame), 0x81, 0xa3, 'p', 't', 's'}, enc...)
		m, err := c.Decode(p)
		require.NoError(t, err, "%x", enc)
		require.Equal(t, int64(-1), m.(*ipc.Frame).PTS, "%x", enc)
	}
}

// TestDecodeOutOfRangeInts: an integer that does not fit its field is an
// invalid value (ErrInvalid, not ErrMalformed: the producer answers it with
// Reject 9) whose error names the field, never a wrapped-around number; a
// value of the wrong msgpack type is malformed (Reject 5).
func TestDecodeOutOfRangeInts(t *testing.T) {
	c := ipc.NewCodec()
	hello := func(k string, v any) map[string]any {
		m := map[string]any{"major": 1, "minor": 0, "name": "x", "stream": "raw", "max_in_flight": 4}
		m[k] = v
		return m
	}
	caps := map[string]any{"format": "NV12", "width": 320, "height": 240, "fps_n": 30, "fps_d": 1,
		"planes": []any{map[string]any{"offset": 0, "stride": 320, "size": 76800, "fd": 0}, map[string]any{"offset": 76800, "stride": 320, "size": 38400, "fd": 300}}}
	for _, tc := range []struct {
		name      string
		p         []byte
		malformed bool   // of the wrong type, not out of range
		field     string // the error names it
	}{
		{"uint32 ≥ 2^32", body(t, ipc.TypeHello, hello("max_in_flight", uint64(1)<<33)), false, "max_in_flight = 8589934592 does not fit its type uint32"},
		{"negative into uint32", body(t, ipc.TypeHello, hello("max_hold_ms", -1)), false, "max_hold_ms = -1 does not fit its type uint32"},
		{"uint16 ≥ 2^16", body(t, ipc.TypeHello, hello("major", 70000)), false, "major = 70000"},
		{"uint64 beyond int64", body(t, ipc.TypeHello, hello("replay_from_ns", uint64(1)<<63)), false, "replay_from_ns = 9223372036854775808 does not fit its type int64"},
		{"nested uint8", body(t, ipc.TypeCaps, caps), false, "planes[1].fd = 300 does not fit its type uint8"},
		{"nested in welcome", body(t, ipc.TypeWelcome, map[string]any{"caps": caps}), false, "caps.planes[1].fd = 300"},
		{"announce surface", body(t, ipc.TypeAnnounce, map[string]any{"surfaces": []any{map[string]any{"id": 1, "kind": 1, "nfds": 1}, map[string]any{"id": -2}}}), false, "surfaces[1].id = -2"},
		{"lease -1", body(t, ipc.TypeRelease, map[string]any{"leases": []any{5, -1}}), false, "leases[1] = -1 does not fit its type uint64"},
		{"frame surface 2^32", body(t, ipc.TypeFrame, map[string]any{"surface": uint64(1) << 32}), false, "surface = 4294967296"},
		{"frame flags -1", body(t, ipc.TypeFrame, map[string]any{"flags": -1}), false, "flags = -1"},
		{"frame lease -5", body(t, ipc.TypeFrame, map[string]any{"lease": -5}), false, "lease = -5"},
		{"plane fd 256", body(t, ipc.TypeFrame, map[string]any{"planes": []any{map[string]any{"fd": 256}}}), false, "planes[0].fd = 256"},
		{"forget id 2^32", body(t, ipc.TypeForget, map[string]any{"ids": []any{uint64(1) << 32}}), false, "ids[0] = 4294967296"},
		{"lease string", body(t, ipc.TypeRelease, map[string]any{"leases": []any{"x"}}), true, "leases[0]: expected an integer, found a string"},
		{"frame pts float", body(t, ipc.TypeFrame, map[string]any{"pts": 1.5}), true, "pts: expected an integer, found a float (0xcb)"},
		{"hello max_in_flight float", body(t, ipc.TypeHello, hello("max_in_flight", 4.0)), true, "max_in_flight: expected an integer, found a float"},
		{"hello policy int", body(t, ipc.TypeHello, hello("policy", 1)), true, "policy: expected a string, found an integer"},
		{"device flag string", body(t, ipc.TypeAnnounce, map[string]any{"surfaces": []any{map[string]any{"device": map[string]any{"no_cpu_map": "yes"}}}}), true, "surfaces[0].device.no_cpu_map: expected a boolean"},
		{"meta value int", body(t, ipc.TypeFrame, map[string]any{"meta": map[string]any{"k": 1}}), true, "meta.k: expected bytes, found an integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := c.Decode(tc.p)
			require.Nil(t, m)
			var de *ipc.DecodeError
			require.ErrorAs(t, err, &de)
			require.ErrorIs(t, err, ipc.ErrInvalid)
			require.Equal(t, tc.malformed, errors.Is(err, ipc.ErrMalformed), "%v", err)
			require.ErrorContains(t, err, tc.field)
		})
	}

	// In range, at the edges: accepted as sent.
	for _, tc := range []struct {
		body map[string]any
		want *ipc.Hello
	}{
		{hello("max_in_flight", uint64(1)<<32-1), &ipc.Hello{Major: 1, Name: "x", Stream: "raw", MaxInFlight: 1<<32 - 1}},
		{hello("replay_from_ns", -5), &ipc.Hello{Major: 1, Name: "x", Stream: "raw", MaxInFlight: 4, ReplayFromNS: -5}},
		{hello("replay_from_ns", int64(-1)<<63), &ipc.Hello{Major: 1, Name: "x", Stream: "raw", MaxInFlight: 4, ReplayFromNS: -1 << 63}},
		{hello("replay_from_ns", uint64(1)<<63-1), &ipc.Hello{Major: 1, Name: "x", Stream: "raw", MaxInFlight: 4, ReplayFromNS: 1<<63 - 1}},
	} {
		m, err := c.Decode(body(t, ipc.TypeHello, tc.body))
		require.NoError(t, err, "%v", tc.body)
		require.Equal(t, tc.want, m)
	}
}

// TestCodecMatchesLibrary checks the codec against an independent msgpack
// implementation (github.com/vmihailenco/msgpack, reading the structs'
// msgpack tags), both ways, on every case of the table: what the library
// encodes, the codec decodes to the same message, and the codec's bytes
// are the library's with compact integers (shortest forms, keys in field
// order), so that every peer the library serves reads them.
func TestCodecMatchesLibrary(t *testing.T) {
	c := ipc.NewCodec()
	for _, tc := range casesMessages {
		t.Run(tc.name, func(t *testing.T) {
			lib, err := msgpack.Marshal(tc.msg)
			require.NoError(t, err)
			m, err := c.Decode(append([]byte{byte(tc.msg.Type())}, lib...))
			require.NoError(t, err)
			require.Equal(t, normalize(tc.msg), normalize(m))

			p, err := c.Encode(tc.msg)
			require.NoError(t, err)
			back := reflect.New(reflect.TypeOf(tc.msg).Elem()).Interface()
			require.NoError(t, msgpack.Unmarshal(p[1:], back))
			require.Equal(t, normalize(tc.msg), normalize(back.(ipc.Message)))

			if f, ok := tc.msg.(*ipc.Frame); ok && len(f.Meta) > 1 {
				return // the library writes a map's keys in Go's random order
			}
			var compact bytes.Buffer
			enc := msgpack.NewEncoder(&compact)
			enc.UseCompactInts(true)
			require.NoError(t, enc.Encode(tc.msg))
			require.Equal(t, hexDump(compact.Bytes()), hexDump(p[1:]))
		})
	}
}

func TestDecodeMaxSizeBoundary(t *testing.T) {
	c := ipc.NewCodec()
	// Grow a Frame's metadata until its packet is exactly MaxMessageSize.
	f := &ipc.Frame{Lease: 1, Surface: 1, Gen: 1, Seq: 1, PTS: -1, DTS: -1, Dur: -1}
	pad := 60_000
	for {
		f.Meta = map[string][]byte{"blob": make([]byte, pad)}
		p := encode(t, c, f)
		if len(p) == ipc.MaxMessageSize {
			m, err := c.Decode(p)
			require.NoError(t, err)
			require.Equal(t, f, m)
			break
		}
		require.Less(t, len(p), ipc.MaxMessageSize)
		pad += ipc.MaxMessageSize - len(p)
	}
	// One byte more is too large, both ways.
	f.Meta["blob"] = make([]byte, pad+1)
	_, err := c.Encode(f)
	require.ErrorIs(t, err, ipc.ErrTooLarge)
	p, err := c.Append(nil, &ipc.Frame{Lease: 1, Surface: 1, Gen: 1, Seq: 1, PTS: -1, DTS: -1, Dur: -1, Meta: map[string][]byte{"blob": make([]byte, pad)}})
	require.NoError(t, err)
	_, err = c.Decode(append(p, 0))
	require.ErrorIs(t, err, ipc.ErrTooLarge)
}

func TestEncodeErrors(t *testing.T) {
	c := ipc.NewCodec()
	t.Run("unknown", func(t *testing.T) {
		p, err := c.Encode(&ipc.Unknown{Tag: 99})
		require.Error(t, err)
		require.Nil(t, p)
		require.Contains(t, err.Error(), "Type(99)")
	})
	t.Run("too-large", func(t *testing.T) {
		leases := make([]uint64, 20_000)
		for i := range leases {
			leases[i] = 1<<40 + uint64(i) // 9 bytes each: 180 kB
		}
		p, err := c.Encode(&ipc.Release{Leases: leases})
		require.ErrorIs(t, err, ipc.ErrTooLarge)
		require.Nil(t, p)
		require.Contains(t, err.Error(), "Release")
		// The codec stays usable after an oversized encode.
		q := encode(t, c, &ipc.Release{Leases: leases[:10]})
		m, err := c.Decode(q)
		require.NoError(t, err)
		require.Equal(t, &ipc.Release{Leases: leases[:10]}, m)
	})
	t.Run("append-keeps-dst-on-error", func(t *testing.T) {
		dst := []byte{1, 2, 3}
		_, err := c.Append(dst, &ipc.Unknown{Tag: 0})
		require.Error(t, err)
		require.Equal(t, []byte{1, 2, 3}, dst)
	})
}

func TestStrings(t *testing.T) {
	require.Equal(t, "Hello", ipc.TypeHello.String())
	require.Equal(t, "RequestKeyframe", ipc.TypeRequestKeyframe.String())
	require.Equal(t, "Bye", ipc.TypeBye.String())
	require.Equal(t, "Type(0)", ipc.Type(0).String())
	require.Equal(t, "Ring", ipc.TypeRing.String())
	require.Equal(t, "Type(15)", ipc.Type(15).String())
	require.Equal(t, "Type(255)", ipc.Type(255).String())
	require.Equal(t, "max_hold", ipc.CodeMaxHold.String())
	require.Equal(t, "lossless", ipc.CodeLossless.String())
	require.Equal(t, "no_capacity", ipc.CodeNoCapacity.String())
	require.Equal(t, "rate_limit", ipc.CodeRateLimit.String())
	require.Equal(t, "code(14)", ipc.Code(14).String())
	require.Equal(t, "memfd", ipc.KindMemfd.String())
	require.Equal(t, "dmabuf", ipc.KindDMABuf.String())
	require.Equal(t, "cuda", ipc.KindCUDA.String())
	require.Equal(t, "kind(0)", ipc.Kind(0).String())
}

func TestFrameHelpers(t *testing.T) {
	f := &ipc.Frame{Flags: ipc.FlagKeyframe | ipc.FlagHeader, MonoNS: int64(3 * time.Second)}
	require.True(t, f.Keyframe())
	require.Equal(t, 3*time.Second, f.Capture())
	require.False(t, (&ipc.Frame{Flags: ipc.FlagDiscont}).Keyframe())

	a := caseMsg(t, "Announce/several").(*ipc.Announce)
	require.Equal(t, 1+1+2+4, a.NFDs())
}

// TestCPUMappable: what a consumer may mmap, by kind and device flag.
func TestCPUMappable(t *testing.T) {
	uuid := []byte("0123456789abcdef")
	for _, c := range []struct {
		s    ipc.Surface
		want bool
	}{
		{ipc.Surface{Kind: ipc.KindMemfd}, true},
		{ipc.Surface{Kind: ipc.KindDMABuf}, true},
		{ipc.Surface{Kind: ipc.KindDMABuf, Device: &ipc.Device{UUID: uuid}}, true},
		{ipc.Surface{Kind: ipc.KindDMABuf, Device: &ipc.Device{UUID: uuid, NoCPUMap: true}}, false},
		{ipc.Surface{Kind: ipc.KindCUDA, Device: &ipc.Device{UUID: uuid}}, false},
	} {
		require.Equal(t, c.want, c.s.CPUMappable(), "%+v", c.s)
	}
}

// TestDeviceOlderDecoder: a decoder of minor version 0 ignores the device
// key of a DMA-BUF surface exported from GPU memory (its struct had no such
// field; unknown keys are skipped).
func TestDeviceOlderDecoder(t *testing.T) {
	type surface10 struct {
		ID   uint32 `msgpack:"id"`
		Gen  uint32 `msgpack:"gen"`
		Size uint64 `msgpack:"size"`
		Kind uint8  `msgpack:"kind"`
		NFDs uint8  `msgpack:"nfds"`
	}
	type announce10 struct {
		Surfaces []surface10 `msgpack:"surfaces"`
	}
	p, err := ipc.NewCodec().Encode(&ipc.Announce{Surfaces: []ipc.Surface{
		{ID: 4, Gen: 2, Size: 12 << 20, Kind: ipc.KindDMABuf, NFDs: 1, Device: &ipc.Device{UUID: []byte("0123456789abcdef"), NoCPUMap: true}},
	}})
	require.NoError(t, err)
	var old announce10
	require.NoError(t, msgpack.Unmarshal(p[1:], &old))
	require.Equal(t, announce10{Surfaces: []surface10{{ID: 4, Gen: 2, Size: 12 << 20, Kind: 2, NFDs: 1}}}, old)
}

// normalize maps empty slices and maps of omitempty fields to nil: on the
// wire an empty one and an absent one are the same.
func normalize(m ipc.Message) ipc.Message {
	switch m := m.(type) {
	case *ipc.Frame:
		c := *m
		if len(c.Planes) == 0 {
			c.Planes = nil
		}
		if len(c.Meta) == 0 {
			c.Meta = nil
		}
		return &c
	case *ipc.Caps:
		c := *m
		if len(c.Planes) == 0 {
			c.Planes = nil
		}
		return &c
	case *ipc.Welcome:
		c := *m
		if len(c.Caps.Planes) == 0 {
			c.Caps.Planes = nil
		}
		return &c
	}
	return m
}

// updateCorpus rewrites the table's part of the fuzz corpus:
// go test ./ipc -run TestFuzzCorpus -update-corpus.
var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzDecode/case-* from casesMessages")

// corpusDir holds FuzzDecode's seed corpus, which go test reads: a file
// case-<name> for every case of casesMessages, and whatever inputs a
// fuzzing run found that once failed.
var corpusDir = filepath.Join("testdata", "fuzz", "FuzzDecode")

// corpusFile returns the name and content of the corpus file of a case.
func corpusFile(t testing.TB, name string, m ipc.Message) (string, string) {
	file := "case-" + strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(name))
	return file, fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", encode(t, ipc.NewCodec(), m))
}

// TestFuzzCorpus: the corpus holds exactly the table's cases as the codec
// encodes them, so that FuzzDecode starts from every message type.
func TestFuzzCorpus(t *testing.T) {
	if *updateCorpus {
		require.NoError(t, os.MkdirAll(corpusDir, 0o755))
		old, err := filepath.Glob(filepath.Join(corpusDir, "case-*"))
		require.NoError(t, err)
		for _, f := range old {
			require.NoError(t, os.Remove(f))
		}
		for _, tc := range casesMessages {
			name, content := corpusFile(t, tc.name, tc.msg)
			require.NoError(t, os.WriteFile(filepath.Join(corpusDir, name), []byte(content), 0o644))
		}
	}
	want := map[string]bool{}
	for _, tc := range casesMessages {
		name, content := corpusFile(t, tc.name, tc.msg)
		want[name] = true
		got, err := os.ReadFile(filepath.Join(corpusDir, name))
		require.NoError(t, err, "run go test ./ipc -run TestFuzzCorpus -update-corpus")
		require.Equal(t, content, string(got), "%s: run go test ./ipc -run TestFuzzCorpus -update-corpus", name)
	}
	files, err := filepath.Glob(filepath.Join(corpusDir, "case-*"))
	require.NoError(t, err)
	for _, f := range files {
		require.True(t, want[filepath.Base(f)], "%s is no case of casesMessages: run go test ./ipc -run TestFuzzCorpus -update-corpus", f)
	}
}

// FuzzDecode decodes anything: it fails or gives a message that encodes
// and decodes back to itself. Its seeds are the corpus (the table's cases,
// TestFuzzCorpus), the packets of the error tests and a few odd ones.
func FuzzDecode(f *testing.F) {
	c := ipc.NewCodec()
	hello := encode(f, c, casesMessages[0].msg)
	for _, p := range [][]byte{
		{},
		{byte(ipc.TypeHello)},
		{byte(ipc.TypeRelease), 0xc0},
		{byte(ipc.TypeRelease), 0x91, 0x91, 0x05},
		{200, 0x80},
		{15, 0x81, 0xa1, 'x', 0x01},
		hello[:len(hello)/2],
		append(bytes.Clone(hello), 0),
		{byte(ipc.TypeAnnounce), 0x81, 0xa8, 's', 'u', 'r', 'f', 'a', 'c', 'e', 's', 0x90},
		{byte(ipc.TypeRelease), 0x81, 0xa6, 'l', 'e', 'a', 's', 'e', 's', 0xdc, 0x00, 0x02, 0x01},
		nested(ipc.MaxDepth),
		nested(ipc.MaxDepth + 1),
	} {
		f.Add(p)
	}
	for _, tc := range hugeLengthCases {
		f.Add(tc.p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := c.Decode(p)
		if err != nil {
			require.Nil(t, m)
			var de *ipc.DecodeError
			require.ErrorAs(t, err, &de)
			return
		}
		require.NotNil(t, m)
		require.Equal(t, ipc.Type(p[0]), m.Type())
		if _, ok := m.(*ipc.Unknown); ok {
			return
		}
		q, err := c.Encode(m)
		if errors.Is(err, ipc.ErrTooLarge) && len(p) > ipc.MaxMessageSize/2 {
			// A re-encoding may be longer than its input: absent keys
			// become present and str values of Meta become bin.
			return
		}
		require.NoError(t, err)
		m2, err := c.Decode(q)
		require.NoError(t, err, "re-encoding %x of %#v", q, m)
		require.Equal(t, normalize(m), normalize(m2))
	})
}

// Benchmarks: the producer encodes one Frame per consumer per frame with
// Append into a reused buffer; a consumer decodes one Frame per frame and
// encodes batched Releases.

var benchFrame = &ipc.Frame{
	Lease: 123_456, Surface: 3, Gen: 1, Seq: 9_876_543, Offset: 0, Size: nv12SurfaceSize,
	PTS: 34_700_000_000, DTS: -1, Dur: 33_333_333,
	MonoNS: 123_456_789_012_345, RealNS: 1_763_766_000_123_456_789,
	Flags: ipc.FlagKeyframe,
}

// benchEncode measures Append of m into a reused buffer, as the producer
// encodes a Frame for each consumer.
func benchEncode(b *testing.B, m ipc.Message) {
	c := ipc.NewCodec()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = c.Append(buf[:0], m); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// benchDecode measures Decode of m's packet.
func benchDecode(b *testing.B, m ipc.Message) {
	c := ipc.NewCodec()
	p := encode(b, c, m)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(p); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRelease is a batch of 16 releases.
func benchRelease() *ipc.Release {
	m := &ipc.Release{Leases: make([]uint64, 16)}
	for i := range m.Leases {
		m.Leases[i] = 100_000 + uint64(i)
	}
	return m
}

func BenchmarkEncodeFrame(b *testing.B)   { benchEncode(b, benchFrame) }
func BenchmarkDecodeFrame(b *testing.B)   { benchDecode(b, benchFrame) }
func BenchmarkEncodeRelease(b *testing.B) { benchEncode(b, benchRelease()) }
func BenchmarkDecodeRelease(b *testing.B) { benchDecode(b, benchRelease()) }

// The handshake's messages: once per connection, not per frame.

func BenchmarkDecodeHello(b *testing.B)   { benchDecode(b, caseMsg(b, "Hello/queue")) }
func BenchmarkEncodeWelcome(b *testing.B) { benchEncode(b, caseMsg(b, "Welcome")) }
