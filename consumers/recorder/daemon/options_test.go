package daemon

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/config"
	"github.com/framehub/framehub/internal/config/configtest"
)

func TestOptions(t *testing.T) {
	o, err := configtest.Load[Options](t, "recorder.yaml", "")
	require.NoError(t, err)
	cfg := o.Config()
	require.Equal(t, "h264", cfg.Stream)
	require.Equal(t, "recordings", cfg.Dir)
	require.Equal(t, time.Minute, cfg.Segment)
	require.Equal(t, time.Second, cfg.Fragment)
	require.Equal(t, 5*time.Second, cfg.Pre)
	require.Equal(t, 10*time.Second, cfg.Post)
	require.Equal(t, int64(32<<20), cfg.QueueBytes)
	require.Equal(t, "127.0.0.1:7702", o.Admin)

	o, err = configtest.Load[Options](t, "recorder.yaml", "mode: event\nsegment: 5m\nkeep-bytes: 20GiB\nkeep-age: 720h\nqueue-bytes: 64M\n", "-segment", "30s")
	require.NoError(t, err)
	require.Equal(t, "event", o.Mode)
	require.Equal(t, 30*time.Second, o.Segment, "the command line wins")
	require.Equal(t, config.ByteSize(20<<30), o.KeepBytes)
	require.Equal(t, config.ByteSize(64e6), o.QueueBytes)
	require.Equal(t, 720*time.Hour, o.KeepAge)
}

func TestOptionErrors(t *testing.T) {
	for _, ca := range []struct {
		name, file string
		line       int
		field      string
	}{
		{"unknown key", "segment: 5m\nsegmnt: 1m\n", 2, "segmnt"},
		{"wrong type", "dir: x\nsegment: long\n", 2, "segment"},
		{"bad size", "keep-bytes: lots\n", 1, "keep-bytes"},
		{"invalid value", "fragment: 2s\nsegment: 1s\n", 2, "segment"},
		{"mode", "mode: sometimes\n", 1, "mode"},
		{"queue", "queue-bytes: 1K\n", 1, "queue-bytes"},
		{"max-hold", "max-hold: 10ms\n", 1, "max-hold"},
	} {
		t.Run(ca.name, func(t *testing.T) {
			_, err := configtest.Load[Options](t, "recorder.yaml", ca.file)
			var ce *config.Error
			require.True(t, errors.As(err, &ce), "err = %v", err)
			require.Equal(t, ca.line, ce.Line, "err = %v", err)
			require.Equal(t, ca.field, ce.Field, "err = %v", err)
			require.Contains(t, err.Error(), "recorder.yaml:")
		})
	}
	_, err := configtest.Load[Options](t, "recorder.yaml", "", "-fragment", "1ms")
	require.EqualError(t, err, "-fragment: 1ms must be ≥ 10ms")
	_, err = configtest.Load[Options](t, "recorder.yaml", "", "stray")
	require.ErrorContains(t, err, `unexpected argument "stray"`)
}
