package sdk

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/rundir"
	"github.com/framehub/framehub/ipc"
)

// TestWireValues: the SDK's own Policy, Code and Kind carry the wire
// protocol's values (docs/PROTOCOL.md §4), which the SDK converts by type.
func TestWireValues(t *testing.T) {
	codes := map[Code]ipc.Code{
		CodeOK: ipc.CodeOK, CodeVersion: ipc.CodeVersion, CodeUnknownStream: ipc.CodeUnknownStream, CodeDenied: ipc.CodeDenied,
		CodeTooMany: ipc.CodeTooMany, CodeProtocol: ipc.CodeProtocol, CodeMaxHold: ipc.CodeMaxHold, CodeShutdown: ipc.CodeShutdown,
		CodeBadRelease: ipc.CodeBadRelease, CodeInvalidArgument: ipc.CodeInvalidArgument, CodeLossless: ipc.CodeLossless,
		CodeNoCapacity: ipc.CodeNoCapacity, CodeReclaimed: ipc.CodeReclaimed, CodeRateLimit: ipc.CodeRateLimit,
	}
	require.Len(t, codes, 14)
	for s, w := range codes {
		require.Equal(t, uint16(w), uint16(s))
		require.Equal(t, w.String(), s.String())
	}
	require.Equal(t, "code(99)", Code(99).String())
	for s, w := range map[Kind]ipc.Kind{KindMemfd: ipc.KindMemfd, KindDMABuf: ipc.KindDMABuf, KindCUDA: ipc.KindCUDA} {
		require.Equal(t, uint8(w), uint8(s))
		require.Equal(t, w.String(), s.String())
	}
	require.Equal(t, string(ipc.PolicyQueue), string(PolicyQueue))
	require.Equal(t, string(ipc.PolicyLatest), string(PolicyLatest))
	require.Equal(t, rundir.SocketName, SocketName)
}

// TestConversions: what the SDK makes of a Welcome, caps and an Announce
// entry.
func TestConversions(t *testing.T) {
	w := &ipc.Welcome{Session: 9, Stream: "raw", MaxInFlight: 3, MaxHoldMS: 1500, Policy: ipc.PolicyLatest,
		Flags: ipc.HelloLossless | ipc.HelloReleaseRing, Pool: ipc.Pool{Min: 2, Max: 8, SurfaceSize: 1 << 33, Kind: ipc.KindDMABuf}}
	require.Equal(t, Subscription{Session: 9, Stream: "raw", MaxInFlight: 3, MaxHold: 1500 * time.Millisecond, Policy: PolicyLatest,
		Lossless: true, ReleaseRing: true, Pool: Pool{Min: 2, Max: 8, SurfaceSize: 1 << 33, Kind: KindDMABuf}}, subscriptionOf(w))
	c := ipc.Caps{Format: "NV12", Width: 64, Height: 48, FPSNum: 30000, FPSDen: 1001,
		Planes: []ipc.Plane{{Offset: 0, Stride: 64, Size: 3072}, {Offset: 4096, Stride: 64, Size: 1536, FD: 1}}}
	require.Equal(t, Caps{Format: "NV12", Width: 64, Height: 48, FPSNum: 30000, FPSDen: 1001,
		Planes: []Plane{{Offset: 0, Stride: 64, Size: 3072}, {Offset: 4096, Stride: 64, Size: 1536, FD: 1}}}, capsOf(c))
	require.Nil(t, capsOf(ipc.Caps{Format: "H264"}).Planes)
	uuid := []byte("0123456789abcdef")
	s := surfaceOf(&ipc.Surface{ID: 4, Gen: 2, Size: 12 << 20, Kind: ipc.KindCUDA, NFDs: 1, Device: &ipc.Device{UUID: uuid, NoCPUMap: true}})
	require.Equal(t, Surface{ID: 4, Gen: 2, Size: 12 << 20, Kind: KindCUDA, Device: &Device{UUID: uuid, NoCPUMap: true}}, s)
	require.False(t, s.CPUMappable())
	require.True(t, surfaceOf(&ipc.Surface{Kind: ipc.KindDMABuf, Device: &ipc.Device{UUID: uuid}}).CPUMappable())
	require.True(t, surfaceOf(&ipc.Surface{Kind: ipc.KindMemfd}).CPUMappable())
}

// wirePackages matches what a consumer's API must not show: package ipc
// (the wire codec) and framehub's internal packages.
var wirePackages = regexp.MustCompile(`\bipc\.|framehub/ipc\b|\binternal/|\bicuda\.|\bgpuframe\.|\brundir\.`)

// TestAPIHasNoWireTypes: the documentation of the SDK and of its packages
// meant for consumers (go doc -all, what a user reads) names no type of
// package ipc and no internal package.
func TestAPIHasNoWireTypes(t *testing.T) {
	for _, pkg := range []string{".", "./cuda", "./plugin", "./plugin/host", "./stamp"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, "go", "doc", "-all", pkg).CombinedOutput()
		cancel()
		require.NoError(t, err, "go doc -all %s:\n%s", pkg, out)
		for line := range strings.Lines(string(out)) {
			if wirePackages.MatchString(line) {
				t.Errorf("go doc %s: %s", pkg, strings.TrimSpace(line))
			}
		}
	}
}
