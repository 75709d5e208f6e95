package web

import (
	"bytes"
	"encoding/json"
	"image/jpeg"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
)

func TestSnapshotJPEG(t *testing.T) {
	p := producertest.StartProducer(t, producertest.Options{Width: 320, Height: 240})
	_, base, _ := testServer(t, func(c *Config) { c.Cameras[0].Socket = p.Addr })

	resp, body := get(t, base+"/cam/snapshot.jpg", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "image/jpeg", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	img, err := jpeg.Decode(bytes.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, 320, img.Bounds().Dx())
	require.Equal(t, 240, img.Bounds().Dy())

	resp, body = get(t, base+"/cam/snapshot.jpg?width=160", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	img, err = jpeg.Decode(bytes.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, 160, img.Bounds().Dx())
	require.Equal(t, 120, img.Bounds().Dy(), "the aspect ratio is kept")

	for _, bad := range []string{"7", "abc", "0", "640"} {
		resp, body = get(t, base+"/cam/snapshot.jpg?width="+bad, nil)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "width=%s: %s", bad, body)
		require.Contains(t, string(body), `width=\"`+bad+`\"`)
	}

	// The raw subscription lives only for the request: fds come back.
	before := testutil.CountFDs(t, os.Getpid())
	for range 20 {
		resp, _ = get(t, base+"/cam/snapshot.jpg?width=64", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()
	require.Eventually(t, func() bool { return testutil.FDCount(os.Getpid()) <= before }, 10*time.Second, 20*time.Millisecond,
		"fds after 20 snapshots: %d, before: %d", testutil.FDCount(os.Getpid()), before)
}

func TestSnapshotNoProducer(t *testing.T) {
	_, base, _ := testServer(t, func(c *Config) { c.SnapshotTimeout = time.Second })
	resp, body := get(t, base+"/cam/snapshot.jpg", nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	require.Contains(t, string(body), `camera \"cam\": subscribe to stream \"raw\"`)
}

func TestStoredSnapshots(t *testing.T) {
	s, base, _ := testServer(t, nil)
	dir := s.o.Cameras[0].Snapshots
	jpg := []byte("\xff\xd8 not really a jpeg \xff\xd9")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "20261206T055345.123456789Z-0a1b2c3d4e5f.jpg"), jpg, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "20261206T055346.000000000Z-abcdef012345.jpg"), jpg, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".20261206T055347.000000000Z-ffffff000000.jpg.tmp"), jpg, 0o644))

	resp, body := get(t, base+"/cam/snapshots/", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var l struct {
		Snapshots []StoredJSON `json:"snapshots"`
	}
	require.NoError(t, json.Unmarshal(body, &l))
	require.Len(t, l.Snapshots, 2, "a write in progress is not listed")
	require.Equal(t, "abcdef012345", l.Snapshots[0].ID, "newest first")
	require.Equal(t, "/cam/snapshots/0a1b2c3d4e5f.jpg", l.Snapshots[1].URL)
	require.Equal(t, time.Date(2026, 12, 6, 5, 53, 45, 123456789, time.UTC), l.Snapshots[1].Taken)

	resp, body = get(t, base+l.Snapshots[1].URL, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, jpg, body)
	resp, body = get(t, base+"/cam/snapshots/ffffff000000.jpg", nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Contains(t, string(body), `no stored snapshot \"ffffff000000\"`)
	resp, _ = get(t, base+"/cam/snapshots/..%2Fsecret.jpg", nil)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}
