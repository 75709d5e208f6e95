package web

import (
	"context"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLLHLS(t *testing.T) {
	s, base, _ := testServer(t, nil)
	cam := s.cams["cam"]
	startFeed(t, cam, 30) // a keyframe every second
	runHLS(t, cam)

	resp, body := get(t, base+"/cam/index.m3u8", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Contains(t, resp.Header.Get("Content-Type"), "mpegurl")
	require.Contains(t, string(body), "#EXTM3U")
	media := regexp.MustCompile(`(?m)^[^#\s].*\.m3u8.*$`).FindString(string(body))
	require.NotEmpty(t, media, "the multivariant playlist names the media playlist: %s", body)

	resp, body = get(t, base+"/cam/"+media, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	pl := string(body)
	require.Contains(t, pl, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES", "low-latency: blocking playlist reloads")
	require.Contains(t, pl, "#EXT-X-PART:", "low-latency: parts")
	initFile := regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`).FindStringSubmatch(pl)
	require.Len(t, initFile, 2, pl)
	resp, body = get(t, base+"/cam/"+initFile[1], nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "ftyp", string(body[4:8]))
	require.Equal(t, 1, cam.status().Viewers["hls"])

	resp, body = get(t, base+"/cam/other.txt", nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, string(body))
}

// runHLS runs the camera's HLS actor for the test (Server.Run is not run:
// a feed stands in for the producer).
func runHLS(t *testing.T, c *camera) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.hls.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}
