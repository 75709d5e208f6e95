package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/framehub/framehub/consumers/snapshot"
	"github.com/framehub/framehub/sdk"
)

// Snapshots: GET /<camera>/snapshot.jpg encodes the latest raw frame with
// the snapshot service's encoder (consumers/snapshot, as a library); the
// raw subscription exists only while a request waits for its frame, so a
// page nobody looks at costs the producer nothing. Stored snapshots (the
// snapshot service's files) are listed and served by id.

// maxSnapshotsInFlight bounds the concurrent snapshot.jpg requests of one
// camera: each holds a subscription and encodes a full frame.
const maxSnapshotsInFlight = 4

// handleSnapshot answers GET /<camera>/snapshot.jpg[?width=N].
func (s *Server) handleSnapshot(c *camera) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		width := 0
		if v := r.URL.Query().Get("width"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 2 || n%2 != 0 {
				writeError(w, &paramError{"width", v, "must be an even number of pixels ≥ 2"})
				return
			}
			width = n
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.o.SnapshotTimeout)
		defer cancel()
		select {
		case c.snapshots <- struct{}{}:
			defer func() { <-c.snapshots }()
		case <-ctx.Done():
			writeError(w, httpError{http.StatusServiceUnavailable, fmt.Sprintf("camera %q: %d snapshots in progress for %v", c.cfg.Name,
				maxSnapshotsInFlight, s.o.SnapshotTimeout)})
			return
		}
		jpeg, taken, err := s.takeSnapshot(ctx, c, width)
		if err != nil {
			writeError(w, err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "image/jpeg")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Time", taken.UTC().Format(time.RFC3339Nano))
		h.Set("Content-Length", strconv.Itoa(len(jpeg)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(jpeg)
		}
	}
}

// takeSnapshot subscribes to c's raw stream, encodes the first frame it
// gets (scaled to width, keeping the aspect ratio, when width > 0) and
// ends the subscription.
func (s *Server) takeSnapshot(ctx context.Context, c *camera, width int) ([]byte, time.Time, error) {
	cl, err := sdk.Dial(ctx, c.cfg.Socket, sdk.Options{Stream: c.cfg.RawStream, Name: "framehub-web/" + c.cfg.Name + "/snapshot",
		MaxInFlight: 1, MaxHold: 2 * time.Second, Policy: sdk.PolicyLatest, NoReleaseRing: true, Logger: c.log})
	if err != nil {
		return nil, time.Time{}, httpError{http.StatusServiceUnavailable, fmt.Sprintf("camera %q: subscribe to stream %q at %s: %v",
			c.cfg.Name, c.cfg.RawStream, c.cfg.Socket, err)}
	}
	defer cl.Close()
	f, err := cl.Next(ctx)
	if err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, context.DeadlineExceeded) {
			code = http.StatusGatewayTimeout
		}
		return nil, time.Time{}, httpError{code, fmt.Sprintf("camera %q: no frame: %v", c.cfg.Name, err)}
	}
	released := false
	release := func() {
		if !released {
			released = true
			f.Release()
		}
	}
	defer release()
	caps := cl.Caps()
	src, err := snapshot.FrameNV12(f, caps)
	if err != nil {
		return nil, time.Time{}, httpError{http.StatusInternalServerError, err.Error()}
	}
	ow, oh := caps.Width, caps.Height
	if width > 0 {
		if ow, oh, err = snapshot.OutputSize(snapshot.Request{Scale: width}, caps.Width, caps.Height); err != nil {
			return nil, time.Time{}, &paramError{"width", strconv.Itoa(width), fmt.Sprintf("the frame is %dx%d: %v", caps.Width, caps.Height, err)}
		}
	}
	taken := f.Realtime()
	jpeg, err := snapshot.GoEncoder{}.Encode(ctx, src, ow, oh, s.o.Quality, release)
	if err != nil {
		return nil, time.Time{}, httpError{http.StatusInternalServerError, err.Error()}
	}
	return jpeg, taken, nil
}

// StoredJSON is one stored snapshot in /<camera>/snapshots/.
type StoredJSON struct {
	snapshot.Stored
	URL string `json:"url"`
}

// handleStoredList answers GET /<camera>/snapshots/: the snapshot
// service's files, newest first.
func (s *Server) handleStoredList(c *camera) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c.cfg.Snapshots == "" {
			writeError(w, httpError{http.StatusNotFound, fmt.Sprintf("camera %q has no snapshot directory configured", c.cfg.Name)})
			return
		}
		list, err := snapshot.ListStored(c.cfg.Snapshots)
		if errors.Is(err, os.ErrNotExist) {
			list, err = nil, nil // no snapshot taken yet
		}
		if err != nil {
			writeError(w, err)
			return
		}
		out := struct {
			Camera    string       `json:"camera"`
			Snapshots []StoredJSON `json:"snapshots"`
		}{c.cfg.Name, []StoredJSON{}}
		for _, st := range list {
			out.Snapshots = append(out.Snapshots, StoredJSON{st, "/" + c.cfg.Name + "/snapshots/" + st.ID + ".jpg"})
		}
		writeJSON(w, http.StatusOK, out)
	}
}

var snapshotID = regexp.MustCompile(`^[0-9a-f]{1,64}\.jpg$`)

// handleStored answers GET /<camera>/snapshots/<id>.jpg.
func (s *Server) handleStored(c *camera) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		file := r.PathValue("file")
		if !snapshotID.MatchString(file) {
			writeError(w, &paramError{"id", file, "not a snapshot id (hex digits) followed by .jpg"})
			return
		}
		id := file[:len(file)-len(".jpg")]
		list, err := snapshot.ListStored(c.cfg.Snapshots)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			writeError(w, err)
			return
		}
		for _, st := range list {
			if st.ID != id {
				continue
			}
			f, err := os.Open(filepath.Join(c.cfg.Snapshots, st.Name))
			if err != nil {
				break // removed by retention meanwhile
			}
			defer f.Close()
			w.Header().Set("Content-Type", "image/jpeg")
			w.Header().Set("Cache-Control", "private, max-age=86400, immutable") // a stored snapshot never changes
			http.ServeContent(w, r, st.Name, st.Taken, f)
			return
		}
		writeError(w, httpError{http.StatusNotFound, fmt.Sprintf("camera %q has no stored snapshot %q", c.cfg.Name, id)})
	}
}
