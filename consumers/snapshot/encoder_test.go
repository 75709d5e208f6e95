package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
)

// meanAbsY is the mean absolute difference of the Y planes of a and b.
func meanAbsY(t *testing.T, a, b *image.YCbCr) float64 {
	t.Helper()
	require.Equal(t, a.Rect, b.Rect)
	sum := 0
	for y := a.Rect.Min.Y; y < a.Rect.Max.Y; y++ {
		for x := a.Rect.Min.X; x < a.Rect.Max.X; x++ {
			d := int(a.Y[a.YOffset(x, y)]) - int(b.Y[b.YOffset(x, y)])
			sum += max(d, -d)
		}
	}
	return float64(sum) / float64(a.Rect.Dx()*a.Rect.Dy())
}

func decode(t *testing.T, data []byte) *image.YCbCr {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	yc, ok := img.(*image.YCbCr)
	require.True(t, ok, "decoded %T", img)
	return yc
}

func TestGoEncoder(t *testing.T) {
	p := testFrame(320, 240, 32)
	for _, sz := range [][2]int{{320, 240}, {160, 120}} {
		calls := 0
		out, err := GoEncoder{}.Encode(context.Background(), p, sz[0], sz[1], 90, func() { calls++ })
		require.NoError(t, err)
		require.Equal(t, 1, calls, "srcDone must be called exactly once")
		img := decode(t, out)
		require.Equal(t, image.Rect(0, 0, sz[0], sz[1]), img.Rect)
		require.Less(t, meanAbsY(t, p.ycbcr(sz[0], sz[1]), img), 6.0)
	}
}

// TestReadJPEG feeds readJPEG two images back to back, the first with a
// comment segment holding an EOI marker and entropy data with stuffed and
// restart bytes, and checks that each read returns exactly one image.
func TestReadJPEG(t *testing.T) {
	var a, b bytes.Buffer
	require.NoError(t, jpeg.Encode(&a, testFrame(64, 32, 0).ycbcr(64, 32), &jpeg.Options{Quality: 100}))
	require.NoError(t, jpeg.Encode(&b, testFrame(32, 16, 0).ycbcr(32, 16), nil))
	require.True(t, bytes.Contains(a.Bytes()[200:], []byte{0xFF, 0x00}), "want stuffed bytes in the entropy data")
	com := []byte{0xFF, 0xFE, 0x00, 0x08, 0xFF, 0xD9, 0xFF, 0xD8, 'x', 'y'}
	first := append(append(append([]byte{}, a.Bytes()[:2]...), com...), a.Bytes()[2:]...)
	sos := bytes.Index(first, []byte{0xFF, 0xDA})
	require.Positive(t, sos)
	rst := sos + 2 + (int(first[sos+2])<<8 | int(first[sos+3])) + 10 // 10 bytes into the entropy data
	first = append(first[:rst:rst], append([]byte{0xFF, 0xD3}, first[rst:]...)...)
	stream := append(append([]byte{}, first...), b.Bytes()...)
	r := bufio.NewReaderSize(bytes.NewReader(stream), 16) // small: exercise ErrBufferFull
	got, err := readJPEG(r, 1<<20)
	require.NoError(t, err)
	require.Equal(t, first, got)
	got, err = readJPEG(r, 1<<20)
	require.NoError(t, err)
	require.Equal(t, b.Bytes(), got)

	_, err = readJPEG(bufio.NewReader(bytes.NewReader(first[:len(first)-1])), 1<<20)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, err = readJPEG(bufio.NewReader(bytes.NewReader([]byte("Setting pipeline"))), 1<<20)
	require.ErrorContains(t, err, "SOI")
	_, err = readJPEG(bufio.NewReader(bytes.NewReader(first)), 100)
	require.ErrorContains(t, err, "larger than 100 bytes")
}

func TestGstEncoder(t *testing.T) {
	if _, err := exec.LookPath("gst-launch-1.0"); err != nil {
		t.Skip("gst-launch-1.0 is not installed (Debian: gstreamer1.0-tools)")
	}
	e, err := NewGstEncoder("", testutil.Logger(t, slog.LevelError))
	require.NoError(t, err)
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	packed := testFrame(320, 240, 0)
	padded := testFrame(320, 240, 32)
	for _, c := range []struct {
		name string
		src  NV12
		w, h int
	}{{"packed", packed, 320, 240}, {"padded", padded, 320, 240}, {"scaled", padded, 160, 120}, {"again", packed, 320, 240}} {
		calls := 0
		out, err := e.Encode(ctx, c.src, c.w, c.h, 90, func() { calls++ })
		require.NoError(t, err, c.name)
		require.Equal(t, 1, calls, "%s: srcDone must be called exactly once", c.name)
		img := decode(t, out)
		require.Equal(t, image.Rect(0, 0, c.w, c.h), img.Rect, c.name)
		require.Less(t, meanAbsY(t, c.src.ycbcr(c.w, c.h), img), 6.0, c.name)
	}
	e.mu.Lock()
	require.Len(t, e.procs, 2, "one child per size and quality")
	victim := e.procs[0]
	e.mu.Unlock()
	require.NoError(t, victim.cmd.Process.Kill())
	<-victim.exited
	out, err := e.Encode(ctx, packed, 320, 240, 90, func() {})
	require.NoError(t, err, "a dead child is replaced")
	decode(t, out)
}

func TestGstEncoderMissingBinary(t *testing.T) {
	_, err := NewGstEncoder("/nonexistent/gst-launch-1.0", nil)
	require.ErrorContains(t, err, "/nonexistent/gst-launch-1.0")
}
