package producer_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/sdk"
)

// A frame a source drops before publishing (DroppedAtSource) uses up its
// sequence number: the consumer's next frame says Dropped 1 and DISCONT,
// and the stream counts it dropped at the source.
func TestDroppedAtSource(t *testing.T) {
	st, addr := replayStream(t, 8, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, addr, sdk.Options{Stream: "h264"})
	require.NoError(t, err)
	defer c.Close()
	publish := func() *sdk.Frame {
		s, err := st.Acquire()
		require.NoError(t, err)
		st.Publish(s, producer.FrameInfo{Size: 16})
		f, err := c.Next(ctx)
		require.NoError(t, err)
		return f
	}
	f := publish()
	first := f.Seq()
	f.Release()
	st.DroppedAtSource()
	f = publish()
	require.Equal(t, first+2, f.Seq())
	require.Equal(t, uint32(1), f.Dropped())
	require.True(t, f.Discont())
	f.Release()
	require.Equal(t, uint64(1), st.Stats().DroppedExhausted)
}
