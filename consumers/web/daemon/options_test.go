package daemon

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/consumers/web"
	"github.com/framehub/framehub/internal/config/configtest"
)

func TestCameraFlags(t *testing.T) {
	o, err := configtest.Load[Options](t, "web.yaml", "",
		"-camera", "name=front,socket=/run/fh/front.sock,recordings=/rec/front,snapshots=/snap/front",
		"-camera", "name=back,socket=@back,stream=h264b")
	require.NoError(t, err)
	cfg := o.Config()
	require.Equal(t, []web.Camera{
		{Name: "front", Socket: "/run/fh/front.sock", Stream: "h264", RawStream: "raw", Recordings: "/rec/front", Snapshots: "/snap/front"},
		{Name: "back", Socket: "@back", Stream: "h264b", RawStream: "raw", Recordings: web.DefaultCamera().Recordings,
			Snapshots: web.DefaultCamera().Snapshots},
	}, cfg.Cameras)
	require.Equal(t, web.DefaultAddr, o.Addr)

	o, err = configtest.Load[Options](t, "web.yaml", "")
	require.NoError(t, err)
	require.Equal(t, []web.Camera{web.DefaultCamera()}, o.Config().Cameras, "no camera given: the demo's")
}

func TestCameraConfigFile(t *testing.T) {
	o, err := configtest.Load[Options](t, "web.yaml", "addr: 127.0.0.1:9999\ncamera:\n"+
		"  - {name: a, socket: /s/a.sock, recordings: /r/a, snapshots: /p/a}\n"+
		"  - {name: b, socket: /s/b.sock}\nquality: 70\n")
	require.NoError(t, err)
	require.Len(t, o.Cameras, 2)
	require.Equal(t, "/r/a", o.Cameras[0].Recordings)
	require.Equal(t, "/s/b.sock", o.Cameras[1].Socket)
	require.Equal(t, 70, o.Quality)
	// The command line's cameras replace the file's.
	o, err = configtest.Load[Options](t, "web.yaml", "camera:\n  - {name: a, socket: /s/a.sock}\n", "-camera", "name=c,socket=/s/c")
	require.NoError(t, err)
	require.Len(t, o.Cameras, 1)
	require.Equal(t, "c", o.Cameras[0].Name)
}

func TestCameraErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		file string
		want string
	}{
		{[]string{"-camera", "socket=/x"}, "", "names no camera"},
		{[]string{"-camera", "name=Front,socket=/x"}, "", `camera name "Front"`},
		{[]string{"-camera", "name=a,sock=/x"}, "", `unknown key "sock"`},
		{[]string{"-camera", "name=list,socket=/x"}, "", "reserved"},
		{[]string{"-camera", "name=a,socket=/x", "-camera", "name=a,socket=/y"}, "", `"a" given twice`},
		{nil, "camera:\n  - {name: a, socket: /x}\n  - {name: a, socket: /y}\n", `"a" given twice`},
		{[]string{"-viewer-queue", "1"}, "", "viewer-queue"},
	} {
		_, err := configtest.Load[Options](t, "web.yaml", c.file, c.args...)
		require.Error(t, err, "%v %q", c.args, c.file)
		require.Contains(t, err.Error(), c.want, "%v %q", c.args, c.file)
	}
}
