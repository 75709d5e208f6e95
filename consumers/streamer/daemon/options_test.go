package daemon

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/consumers/streamer"
	"github.com/framehub/framehub/internal/config"
)

func writeConfig(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "streamer.yaml")
	require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
	return p
}

func load(args ...string) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	err := o.Load(fs, args)
	return o, err
}

func TestOptionsDefaults(t *testing.T) {
	o, err := load()
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:8554", o.RTSPAddr)
	require.Equal(t, "cam", o.Path)
	require.Equal(t, "127.0.0.1:7703", o.Admin)
	require.Equal(t, "h264", o.Stream)
	require.Equal(t, streamer.Defaults(), o.Config(), "the flags' defaults are the streamer's")
}

func TestOptionsFileAndFlags(t *testing.T) {
	file := writeConfig(t, "rtsp-addr: 0.0.0.0:9554\npath: /front/\nkeyframe-wait: 300ms\nuser: viewer\npass: secret\nviewer-queue: 12\n")
	o, err := load("-config", file, "-viewer-queue", "20")
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0:9554", o.RTSPAddr)
	c := o.Config()
	require.NoError(t, c.Validate())
	require.Equal(t, "front", c.Path, "slashes around the path are dropped")
	require.Equal(t, 300*time.Millisecond, o.KeyframeWait)
	require.Equal(t, "viewer", o.User)
	require.Equal(t, 20, o.ViewerQueue, "a flag wins over the file")
}

func TestOptionsErrorsNameFileLineKey(t *testing.T) {
	for name, tc := range map[string]struct {
		yaml, field string
		line        int
	}{
		"unknown key":  {"path: cam\nrtsp-adr: :1\n", "rtsp-adr", 2},
		"wrong type":   {"path: cam\n\nviewer-queue: many\n", "", 3},
		"invalid":      {"path: cam\nviewer-queue: 0\n", "viewer-queue", 2},
		"odd udp port": {"udp-rtp-addr: 127.0.0.1:8001\n", "udp-rtp-addr", 1},
		"user no pass": {"admin: ''\nuser: me\n", "pass", 0},
		"bad publish":  {"publish: http://x/y\n", "publish", 1},
	} {
		t.Run(name, func(t *testing.T) {
			file := writeConfig(t, tc.yaml)
			_, err := load("-config", file)
			var ce *config.Error
			require.True(t, errors.As(err, &ce), "%v", err)
			require.Equal(t, file, ce.File)
			require.Equal(t, tc.line, ce.Line, "%v", err)
			if tc.field != "" {
				require.Equal(t, tc.field, ce.Field, "%v", err)
			}
		})
	}
	_, err := load("-keyframe-wait", "-1s")
	require.ErrorContains(t, err, "-keyframe-wait: -1s must not be negative")
	_, err = load("-rtsp-addr", "nope")
	require.ErrorContains(t, err, "-rtsp-addr")
	_, err = load("stray")
	require.ErrorContains(t, err, "unexpected arguments")
}

func TestOptionsCameras(t *testing.T) {
	o, err := load("-camera", "front=/run/fh/front/framehub.sock", "-camera", "back=@back")
	require.NoError(t, err)
	require.Equal(t, []streamer.Camera{{Name: "front", Socket: "/run/fh/front/framehub.sock"}, {Name: "back", Socket: "@back"}}, o.Config().Cameras)

	file := writeConfig(t, "camera:\n  - front=/a.sock\n  - Back=/b.sock\n")
	_, err = load("-config", file)
	require.ErrorContains(t, err, `camera.1: camera name "Back" has 'B' at byte 0`)
	o, err = load("-config", file, "-camera", "side=/c.sock")
	require.NoError(t, err, "the command line's cameras replace the file's")
	require.Equal(t, []streamer.Camera{{Name: "side", Socket: "/c.sock"}}, o.Config().Cameras)

	_, err = load("-camera", "front")
	require.ErrorContains(t, err, `"front" is not name=socket`)
}
