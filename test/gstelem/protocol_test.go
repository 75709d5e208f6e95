package gstelem_test

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/ipc"
)

// protoChecker is testdata/fhproto_check.c, built with framehubsrc's
// protocol code under AddressSanitizer and UBSan: it decodes and encodes
// what it is asked, one line each.
type protoChecker struct {
	t   *testing.T
	in  io.WriteCloser
	out *bufio.Scanner
}

func startProtoChecker(t *testing.T) *protoChecker {
	t.Helper()
	root := testutil.ModuleRoot(t)
	src := filepath.Join(root, "gst", "framehubsrc")
	bin := filepath.Join(t.TempDir(), "fhproto_check")
	out, err := exec.Command("gcc", "-std=gnu99", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
		"-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-I", src, "-o", bin,
		filepath.Join(root, "test", "gstelem", "testdata", "fhproto_check.c"), filepath.Join(src, "fhproto.c")).CombinedOutput()
	require.NoError(t, err, "gcc fhproto_check.c: %s", out)
	cmd := exec.Command(bin)
	var stderr testutil.LockedBuffer
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, testutil.StartOrphanless(cmd))
	t.Cleanup(func() {
		_ = in.Close()
		require.NoError(t, cmd.Wait(), "fhproto_check: %s", stderr.String())
	})
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	return &protoChecker{t: t, in: in, out: sc}
}

func (c *protoChecker) ask(line string) string {
	c.t.Helper()
	_, err := io.WriteString(c.in, line+"\n")
	require.NoError(c.t, err)
	require.True(c.t, c.out.Scan(), "fhproto_check died on %.200q", line)
	return c.out.Text()
}

func (c *protoChecker) decode(p []byte) string { return c.ask("d " + hex.EncodeToString(p)) }

// expect formats a message the way fhproto_check prints what it decoded.
func expect(m ipc.Message) string {
	planes := func(ps []ipc.Plane) string {
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = fmt.Sprintf("%d,%d,%d,%d", p.Offset, p.Stride, p.Size, p.FD)
		}
		return "[" + strings.Join(s, ";") + "]"
	}
	caps := func(c ipc.Caps) string {
		return fmt.Sprintf("caps=%s %dx%d %d/%d planes=%s codec=%s", c.Format, c.Width, c.Height, c.FPSNum, c.FPSDen, planes(c.Planes), c.Codec)
	}
	switch m := m.(type) {
	case *ipc.Welcome:
		return fmt.Sprintf("Welcome major=%d minor=%d session=%d stream=%s mif=%d hold=%d policy=%s flags=%d %s pool=%d,%d,%d,%d",
			m.Major, m.Minor, m.Session, m.Stream, m.MaxInFlight, m.MaxHoldMS, m.Policy, m.Flags, caps(m.Caps),
			m.Pool.Min, m.Pool.Max, m.Pool.SurfaceSize, m.Pool.Kind)
	case *ipc.Reject:
		return fmt.Sprintf("Reject code=%d reason=%s", m.Code, m.Reason)
	case *ipc.Bye:
		return fmt.Sprintf("Bye code=%d reason=%s", m.Code, m.Reason)
	case *ipc.EOS:
		return "EOS reason=" + m.Reason
	case *ipc.Announce:
		s := make([]string, len(m.Surfaces))
		for i, d := range m.Surfaces {
			dev, nocpu := 0, 0
			if d.Device != nil {
				dev = 1
				if d.Device.NoCPUMap {
					nocpu = 1
				}
			}
			s[i] = fmt.Sprintf("%d,%d,%d,%d,%d,%d,%d", d.ID, d.Gen, d.Size, d.Kind, d.NFDs, dev, nocpu)
		}
		return fmt.Sprintf("Announce [%s] fds=%d", strings.Join(s, ";"), m.NFDs())
	case *ipc.Frame:
		return fmt.Sprintf("Frame lease=%d surface=%d gen=%d seq=%d offset=%d size=%d pts=%d dts=%d dur=%d mono=%d real=%d flags=%d dropped=%d planes=%s",
			m.Lease, m.Surface, m.Gen, m.Seq, m.Offset, m.Size, m.PTS, m.DTS, m.Dur, m.MonoNS, m.RealNS, m.Flags, m.Dropped, planes(m.Planes))
	case *ipc.Forget:
		s := make([]string, len(m.IDs))
		for i, id := range m.IDs {
			s[i] = fmt.Sprint(id)
		}
		return "Forget [" + strings.Join(s, ",") + "]"
	case *ipc.Caps:
		return "Caps " + caps(*m)
	case *ipc.Ping:
		return fmt.Sprintf("Ping token=%d mono=%d", m.Token, m.MonoNS)
	case *ipc.Pong:
		return fmt.Sprintf("Pong token=%d mono=%d", m.Token, m.MonoNS)
	case *ipc.Ring:
		return fmt.Sprintf("Ring size=%d", m.Size)
	}
	panic(fmt.Sprintf("expect: %T", m))
}

// docExample is a byte-exact example of PROTOCOL.md §4, by its title.
var docTitle = regexp.MustCompile("^([A-Z][A-Za-z0-9 .]*?) \\{.*\\}(?: \\(\\+ \\d+ fds\\))?, \\d+ bytes?:(?: `([0-9a-f ]+)`)?$")

func docExamples(t *testing.T) map[string][]byte {
	b, err := os.ReadFile(filepath.Join(testutil.ModuleRoot(t), "docs", "PROTOCOL.md"))
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	out := map[string][]byte{}
	for i := 0; i < len(lines); i++ {
		m := docTitle.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		dump := m[2]
		if dump == "" {
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) == ""; i++ {
			}
			if lines[i] == "```" {
				for i++; i < len(lines) && lines[i] != "```"; i++ {
					dump += lines[i] + " "
				}
			} else {
				dump = strings.Trim(lines[i], "`")
			}
		}
		p, err := hex.DecodeString(strings.Join(strings.Fields(dump), ""))
		require.NoError(t, err, "PROTOCOL.md: %s", m[1])
		out[m[1]] = p
	}
	return out
}

// TestProtocol: framehubsrc's wire code, written in C from PROTOCOL.md,
// agrees with the document and with the reference codec (package ipc).
// The examples of §4 that a producer sends decode to the values their
// titles show, and those a consumer sends are encoded byte for byte;
// random messages of every type a producer sends decode to what the
// reference encoder was given; every truncation of them, and hostile
// packets, are errors, never a crash (the checker runs under
// AddressSanitizer).
func TestProtocol(t *testing.T) {
	c := startProtoChecker(t)
	ex := docExamples(t)
	decoded := map[string]string{
		"Welcome": "Welcome major=1 minor=0 session=7 stream=raw mif=4 hold=2000 policy=latest flags=0 " +
			"caps=NV12 1920x1080 30/1 planes=[0,1920,2073600,0;2076672,1920,1036800,0] codec= pool=0,8,3117056,1",
		"Reject":                   "Reject code=2 reason=no stream",
		"Announce":                 "Announce [1,1,3117056,1,1,0,0;2,1,3117056,1,1,0,0] fds=2",
		"Frame":                    "Frame lease=5 surface=2 gen=1 seq=1042 offset=0 size=3117056 pts=-1 dts=-1 dur=-1 mono=123456789012345 real=1763766000123456789 flags=2 dropped=3 planes=[]",
		"Frame of an H.264 stream": "Frame lease=9 surface=1 gen=1 seq=300 offset=0 size=48213 pts=10000000000 dts=9966666667 dur=33333333 mono=55000000000 real=1763766000000000000 flags=9 dropped=0 planes=[]",
		"Forget":                   "Forget [3,4]",
		"Caps":                     "Caps caps=H264 1280x720 30000/1001 planes=[] codec=avc1.64001f",
		"EOS":                      "EOS reason=camera lost",
		"Ping":                     "Ping token=1 mono=123456789000",
		"Pong":                     "Pong token=1 mono=123456789000",
		"Bye":                      "Bye code=6 reason=max_hold",
		"Ring":                     "Ring size=4096",
	}
	for name, want := range decoded {
		p, ok := ex[name]
		require.True(t, ok, "PROTOCOL.md §4 has no example %q", name)
		require.Equal(t, want, c.decode(p), "PROTOCOL.md's %s example", name)
	}
	encoded := map[string]string{
		"Hello":           "e hello det raw latest 4 2000 0",
		"Release":         "e release 5 6 7",
		"RequestKeyframe": "e keyframe",
		"Pong":            "e pong 1 123456789000",
		"Bye":             "e bye 6 max_hold",
	}
	for name, cmd := range encoded {
		require.Equal(t, hex.EncodeToString(ex[name]), c.ask(cmd), "%s encoded as PROTOCOL.md's example", name)
	}
	for _, m := range []ipc.Message{&ipc.Hello{}, &ipc.Release{Leases: []uint64{1}}, &ipc.RequestKeyframe{}} {
		p, err := ipc.NewCodec().Encode(m)
		require.NoError(t, err)
		require.Contains(t, c.decode(p), "never sent by a producer", "%T from a producer", m)
	}

	rng := rand.New(rand.NewPCG(22, 1))
	codec := ipc.NewCodec()
	for i := range 300 {
		m := randomMessage(rng)
		p, err := codec.Encode(m)
		require.NoError(t, err)
		require.Equal(t, expect(m), c.decode(p), "message %d: %#v", i, m)
		for n := 1; n < len(p); n++ {
			require.True(t, strings.HasPrefix(c.decode(p[:n]), "error: "), "message %d cut to %d of %d bytes: %#v", i, n, len(p), m)
		}
	}

	deep := append([]byte{byte(ipc.TypeFrame), 0x81, 0xa1, 'x'}, []byte(strings.Repeat("\x81\xa1y", 16)+"\xc0")...)
	hostile := map[string][]byte{
		"trailing bytes":            {byte(ipc.TypeEOS), 0x80, 0x00},
		"array body":                {byte(ipc.TypeEOS), 0x90},
		"only the tag":              {byte(ipc.TypeFrame)},
		"float for an integer":      {byte(ipc.TypeFrame), 0x81, 0xa3, 's', 'e', 'q', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0},
		"negative for unsigned":     {byte(ipc.TypeFrame), 0x81, 0xa3, 's', 'e', 'q', 0xff},
		"u32 overflow":              {byte(ipc.TypeFrame), 0x81, 0xa4, 's', 'i', 'z', 'e', 0xcf, 0, 0, 0, 1, 0, 0, 0, 0},
		"map larger than packet":    {byte(ipc.TypeFrame), 0xdf, 0xff, 0xff, 0xff, 0xff},
		"string larger than packet": {byte(ipc.TypeEOS), 0x81, 0xa6, 'r', 'e', 'a', 's', 'o', 'n', 0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'},
		"nested 17 deep":            deep,
		"announce without surfaces": {byte(ipc.TypeAnnounce), 0x80},
		"five planes":               append([]byte{byte(ipc.TypeCaps), 0x81, 0xa6, 'p', 'l', 'a', 'n', 'e', 's', 0x95}, 0x80, 0x80, 0x80, 0x80, 0x80),
	}
	for name, p := range hostile {
		require.True(t, strings.HasPrefix(c.decode(p), "error: "), "%s", name)
	}
	require.Equal(t, "Unknown tag=200", c.decode([]byte{200, 0xc1}), "an unknown type is skipped unread")
}

// randomMessage is a random message of a type a producer sends, within
// what the reference decoder accepts.
func randomMessage(r *rand.Rand) ipc.Message {
	strN := func(n int) string {
		b := make([]byte, r.IntN(n))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		return string(b)
	}
	str := func() string { return strN(40) }
	u32 := func() uint32 { return []uint32{0, 1, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1}[r.IntN(9)] }
	i64 := func() int64 { return []int64{-1, 0, 1, -33, 1 << 40, -(1 << 40), 1<<63 - 1, -1 << 63}[r.IntN(8)] }
	planes := func() []ipc.Plane {
		ps := make([]ipc.Plane, r.IntN(5))
		for i := range ps {
			ps[i] = ipc.Plane{Offset: u32(), Stride: u32(), Size: u32(), FD: uint8(r.IntN(4))}
		}
		return ps
	}
	caps := func() ipc.Caps {
		// fhproto keeps format names up to 31 bytes (GStreamer's are
		// shorter) and refuses longer ones.
		return ipc.Caps{Format: strN(32), Width: u32(), Height: u32(), FPSNum: u32(), FPSDen: u32(), Planes: planes(), Codec: str()}
	}
	switch r.IntN(10) {
	case 0:
		return &ipc.Welcome{Major: 1, Minor: uint16(r.IntN(3)), Session: r.Uint64(), Stream: str(), MaxInFlight: u32(), MaxHoldMS: u32(),
			Policy: []ipc.Policy{ipc.PolicyQueue, ipc.PolicyLatest}[r.IntN(2)], Flags: u32(), Caps: caps(),
			Pool: ipc.Pool{Min: u32(), Max: u32(), SurfaceSize: r.Uint64(), Kind: ipc.Kind(1 + r.IntN(2))}}
	case 1:
		return &ipc.Reject{Code: ipc.Code(r.IntN(14)), Reason: str()}
	case 2:
		a := &ipc.Announce{}
		for range 1 + r.IntN(6) {
			s := ipc.Surface{ID: u32(), Gen: u32(), Size: r.Uint64(), Kind: ipc.Kind(1 + r.IntN(2)), NFDs: uint8(1 + r.IntN(4))}
			if r.IntN(3) == 0 {
				s.Device = &ipc.Device{UUID: make([]byte, 16), NoCPUMap: r.IntN(2) == 0}
			}
			a.Surfaces = append(a.Surfaces, s)
		}
		return a
	case 3:
		m := &ipc.Frame{Lease: r.Uint64(), Surface: u32(), Gen: u32(), Seq: r.Uint64(), Offset: u32(), Size: u32(), PTS: i64(), DTS: i64(),
			Dur: i64(), MonoNS: i64(), RealNS: i64(), Flags: u32(), Dropped: u32(), Planes: planes()}
		if r.IntN(2) == 0 {
			m.Meta = map[string][]byte{str(): []byte(str())}
		}
		return m
	case 4:
		f := &ipc.Forget{IDs: make([]uint32, r.IntN(20))}
		for i := range f.IDs {
			f.IDs[i] = u32()
		}
		return f
	case 5:
		c := caps()
		return &c
	case 6:
		return &ipc.EOS{Reason: str()}
	case 7:
		return &ipc.Ping{Token: r.Uint64(), MonoNS: i64()}
	case 8:
		return &ipc.Bye{Code: ipc.Code(r.IntN(14)), Reason: str()}
	}
	return &ipc.Ring{Size: u32()}
}
