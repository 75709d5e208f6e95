package stamp

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// plane returns a Y plane of rows*stride bytes filled with fill.
func plane(stride, rows int, fill byte) []byte {
	y := make([]byte, stride*rows)
	for i := range y {
		y[i] = fill
	}
	return y
}

func TestRoundTrip(t *testing.T) {
	geoms := []struct {
		name          string
		width, stride int
	}{
		{"w64", 64, 64},
		{"w64-padded", 64, 128},
		{"w100", 100, 100},
		{"w200", 200, 256},
		{"w256", 256, 256},
		{"w1920", 1920, 1920},
		{"w1920-stride2048", 1920, 2048},
	}
	stamps := []Info{
		{Seq: 0, MonoNS: 0},
		{Seq: 1, MonoNS: 2},
		{Seq: 255, MonoNS: -1},
		{Seq: 256, MonoNS: 1_700_000_000_123_456_789},
		{Seq: 1<<32 + 7, MonoNS: math.MinInt64},
		{Seq: math.MaxUint64, MonoNS: math.MaxInt64},
	}
	for _, g := range geoms {
		for _, s := range stamps {
			t.Run(fmt.Sprintf("%s/seq%d", g.name, s.Seq), func(t *testing.T) {
				y := plane(g.stride, Rows+2, 0xAA)
				require.NoError(t, Write(y, g.stride, g.width, s.Seq, s.MonoNS))

				got, err := Read(y, g.stride, g.width)
				require.NoError(t, err)
				require.Equal(t, s, got)

				got, err = Verify(y, g.stride, g.width, s.Seq)
				require.NoError(t, err)
				require.Equal(t, s, got)

				// Nothing outside the region was touched.
				rw := RegionWidth(g.width)
				for i, b := range y {
					if i/g.stride < Rows && i%g.stride < rw {
						continue
					}
					require.Equal(t, byte(0xAA), b, "byte %d (row %d col %d) outside the region changed", i, i/g.stride, i%g.stride)
				}
				// The pattern follows the spec literally.
				for r := 1; r < Rows; r++ {
					for j := range rw {
						require.Equal(t, uint8(s.Seq*31+uint64(r*7+j)), y[r*g.stride+j], "row %d byte %d", r, j)
					}
				}
				for j := HeaderSize; j < rw; j++ {
					require.Equal(t, uint8(s.Seq^uint64(j)), y[j], "row 0 byte %d", j)
				}
			})
		}
	}
}

func TestMinimalBuffer(t *testing.T) {
	// The region only needs (Rows-1)*stride + RW bytes.
	const width, stride = 1920, 2048
	y := make([]byte, (Rows-1)*stride+RegionWidth(width))
	require.NoError(t, Write(y, stride, width, 9, 10))
	info, err := Verify(y, stride, width, 9)
	require.NoError(t, err)
	require.Equal(t, Info{Seq: 9, MonoNS: 10}, info)

	_, err = Read(y[:len(y)-1], stride, width)
	require.ErrorIs(t, err, ErrGeometry)
}

// TestGolden pins the format: the whole 64x8 region for W=64, seq=1, mono=2,
// computed independently (Python, from the package documentation).
func TestGolden(t *testing.T) {
	const (
		wantHeader = "46485354" + // "FHST"
			"0100" + // version 1
			"4000" + // region width 64
			"0800" + // rows 8
			"0000" + // reserved
			"0100000000000000" + // seq 1
			"0200000000000000" + // mono_ns 2
			"e35ed5a9" // crc 0xa9d55ee3
		wantCRC  = 0xa9d55ee3
		wantTail = "212023222524272629282b2a2d2c2f2e313033323534373639383b3a3d3c3f3e"
		wantRow1 = "262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465"
		wantRow7 = "505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f"
	)
	y := make([]byte, 64*Rows)
	require.NoError(t, Write(y, 64, 64, 1, 2))
	require.Equal(t, wantHeader, hex.EncodeToString(y[:HeaderSize]))
	require.Equal(t, wantTail, hex.EncodeToString(y[HeaderSize:64]))
	require.Equal(t, wantRow1, hex.EncodeToString(y[64:128]))
	require.Equal(t, wantRow7, hex.EncodeToString(y[7*64:8*64]))
	require.Equal(t, uint32(wantCRC), binary.LittleEndian.Uint32(y[28:32]))

	// The crc is CRC-32C over row0[0:28] ++ row0[32:RW] ++ rows 1..7.
	data := append(append([]byte{}, y[:28]...), y[32:]...)
	require.Equal(t, uint32(wantCRC), crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	require.Equal(t, uint32(0xE3069283), crc32.Checksum([]byte("123456789"), crc32.MakeTable(crc32.Castagnoli)))
}

func TestCorruption(t *testing.T) {
	for _, g := range []struct{ width, stride int }{{64, 64}, {256, 320}, {1920, 1920}} {
		t.Run(fmt.Sprintf("w%d", g.width), func(t *testing.T) {
			const seq = 12345
			clean := plane(g.stride, Rows, 0)
			require.NoError(t, Write(clean, g.stride, g.width, seq, 42))
			rw := RegionWidth(g.width)
			y := make([]byte, len(clean))
			for r := range Rows {
				for j := range rw {
					for _, flip := range []byte{0x01, 0x80, 0xFF} {
						copy(y, clean)
						y[r*g.stride+j] ^= flip
						info, err := Verify(y, g.stride, g.width, seq)
						require.Error(t, err, "row %d byte %d ^0x%02x undetected", r, j, flip)
						require.Zero(t, info)
						if r == 0 && j < offReserved {
							// magic, version, width, rows: structural.
							require.ErrorIs(t, err, ErrNoStamp, "row %d byte %d", r, j)
						} else {
							require.ErrorIs(t, err, ErrChecksum, "row %d byte %d", r, j)
						}
					}
				}
			}
			// Bytes outside the region are not covered and do not matter.
			copy(y, clean)
			if rw < g.stride {
				y[rw] ^= 0xFF
				y[3*g.stride+g.stride-1] ^= 0xFF
			}
			_, err := Verify(y, g.stride, g.width, seq)
			require.NoError(t, err)
		})
	}
}

// TestTorn mixes the region of two frames row by row: every mix is rejected.
func TestTorn(t *testing.T) {
	const width, stride = 1920, 1920
	a := plane(stride, Rows, 0)
	b := plane(stride, Rows, 0)
	require.NoError(t, Write(a, stride, width, 100, 1))
	require.NoError(t, Write(b, stride, width, 101, 2))
	for cut := 1; cut < Rows; cut++ {
		for _, pair := range [][2][]byte{{a, b}, {b, a}} {
			y := append(append([]byte{}, pair[0][:cut*stride]...), pair[1][cut*stride:]...)
			_, err := Read(y, stride, width)
			require.ErrorIs(t, err, ErrChecksum, "cut at row %d", cut)
		}
	}
	// Header from one frame, all the rest from the other.
	y := append([]byte{}, b...)
	copy(y, a[:HeaderSize])
	_, err := Read(y, stride, width)
	require.ErrorIs(t, err, ErrChecksum)
}

func TestSeqMismatch(t *testing.T) {
	tests := []struct{ have, want uint64 }{
		{1, 2},
		{2, 1},
		{0, math.MaxUint64},
		{7, 7 + 256}, // same pattern bytes, different header
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d_vs_%d", tt.have, tt.want), func(t *testing.T) {
			y := plane(1920, Rows, 0)
			require.NoError(t, Write(y, 1920, 1920, tt.have, 5))
			info, err := Verify(y, 1920, 1920, tt.want)
			require.ErrorIs(t, err, ErrSeq)
			require.NotErrorIs(t, err, ErrChecksum)
			require.ErrorContains(t, err, fmt.Sprintf("seq %d, want %d", tt.have, tt.want))
			require.Equal(t, Info{Seq: tt.have, MonoNS: 5}, info)
		})
	}
}

func TestNoStamp(t *testing.T) {
	stamped := func() []byte {
		y := plane(256, Rows, 0)
		require.NoError(t, Write(y, 256, 256, 3, 4))
		return y
	}
	tests := []struct {
		name  string
		y     func() []byte
		width int
		msg   string
	}{
		{"zeroed", func() []byte { return plane(256, Rows, 0) }, 256, "magic"},
		{"filled", func() []byte { return plane(256, Rows, 0xAA) }, 256, "magic"},
		{"invalidated", func() []byte {
			y := stamped()
			require.NoError(t, Invalidate(y, 256, 256))
			return y
		}, 256, "magic"},
		{"version2", func() []byte {
			y := stamped()
			binary.LittleEndian.PutUint16(y[offVersion:], 2)
			return y
		}, 256, "version 2, want 1"},
		{"rows9", func() []byte {
			y := stamped()
			binary.LittleEndian.PutUint16(y[offRows:], 9)
			return y
		}, 256, "rows 9, want 8"},
		// Stamped for a 256-wide region, read as a 64-wide frame.
		{"other-width", stamped, 64, "region width 256, want 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Read(tt.y(), 256, tt.width)
			require.ErrorIs(t, err, ErrNoStamp)
			require.ErrorContains(t, err, tt.msg)
			require.Zero(t, info)
			_, err = Verify(tt.y(), 256, tt.width, 3)
			require.ErrorIs(t, err, ErrNoStamp)
		})
	}
}

func TestGeometry(t *testing.T) {
	big := make([]byte, 4096*Rows)
	tests := []struct {
		name          string
		y             []byte
		stride, width int
		msg           string
	}{
		{"width63", big, 63, 63, "width 63 is below the minimum 64"},
		{"width0", big, 64, 0, "width 0"},
		{"negative", big, 64, -64, "width -64"},
		{"stride<width", big, 100, 128, "stride 100 is below width 128"},
		{"short", make([]byte, 7*1920+255), 1920, 1920, "13695 bytes is shorter than the 13696 bytes"},
		{"nil", nil, 64, 64, "0 bytes"},
		{"huge-stride", big, math.MaxInt, 64, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Write(tt.y, tt.stride, tt.width, 1, 1)
			require.ErrorIs(t, err, ErrGeometry)
			require.ErrorContains(t, err, tt.msg)
			_, err = Read(tt.y, tt.stride, tt.width)
			require.ErrorIs(t, err, ErrGeometry)
			_, err = Verify(tt.y, tt.stride, tt.width, 1)
			require.ErrorIs(t, err, ErrGeometry)
			require.ErrorIs(t, Invalidate(tt.y, tt.stride, tt.width), ErrGeometry)
		})
	}
}

func TestUpdateSmall(t *testing.T) {
	tab := shared().crc
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 100 {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.UintN(256))
		}
		seed := rng.Uint32()
		require.Equal(t, crc32.Update(seed, tab, p), updateSmall(seed, tab, p), "len %d", n)
	}
}

func TestNoAllocs(t *testing.T) {
	y := plane(1920, Rows, 0)
	allocs := testing.AllocsPerRun(100, func() {
		if err := Write(y, 1920, 1920, 77, 88); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(y, 1920, 1920, 77); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}

func BenchmarkWrite(b *testing.B) {
	y := plane(1920, Rows, 0)
	b.SetBytes(int64(Rows * RegionWidth(1920)))
	seq := uint64(0)
	for b.Loop() {
		seq++
		if err := Write(y, 1920, 1920, seq, int64(seq)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	y := plane(1920, Rows, 0)
	if err := Write(y, 1920, 1920, 5, 6); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(Rows * RegionWidth(1920)))
	for b.Loop() {
		if _, err := Verify(y, 1920, 1920, 5); err != nil {
			b.Fatal(err)
		}
	}
}
