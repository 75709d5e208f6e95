package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
)

// Encoder names accepted by Config.Encoder and the "encoder" request parameter.
const (
	EncoderGo  = "go"  // image/jpeg, in this process
	EncoderGst = "gst" // GStreamer jpegenc in a gst-launch-1.0 child process
)

// Encoder turns an NV12 frame into a JPEG.
type Encoder interface {
	// Name is the encoder's name (EncoderGo, EncoderGst).
	Name() string
	// Encode encodes src scaled to width×height (even, at most src's size)
	// at quality 1..100. It calls srcDone exactly once, before returning, as
	// soon as it no longer reads src: the frame's lease may end then, before
	// the JPEG is finished when the encoder works on its own copy.
	Encode(ctx context.Context, src NV12, width, height, quality int, srcDone func()) ([]byte, error)
	// Close releases the encoder's resources (child processes).
	Close() error
}

// GoEncoder encodes with the standard library's image/jpeg: no cgo, no
// child process, works wherever the binary runs. At full size it reads the
// Y plane straight from the frame's mapping (no copy), so the lease lasts
// the whole encode; a scaled snapshot reads the frame only while scaling.
type GoEncoder struct{}

// Name implements Encoder.
func (GoEncoder) Name() string { return EncoderGo }

// Encode implements Encoder.
func (GoEncoder) Encode(_ context.Context, src NV12, width, height, quality int, srcDone func()) ([]byte, error) {
	img := src.ycbcr(width, height)
	if width != src.Width || height != src.Height {
		srcDone() // the scaled planes are ours
		srcDone = func() {}
	}
	var buf bytes.Buffer
	buf.Grow(width * height / 4)
	err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality})
	srcDone()
	if err != nil {
		return nil, fmt.Errorf("snapshot: image/jpeg encode %dx%d: %w", width, height, err)
	}
	return buf.Bytes(), nil
}

// Close implements Encoder.
func (GoEncoder) Close() error { return nil }
