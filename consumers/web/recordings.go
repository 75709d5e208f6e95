package web

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/framehub/framehub/consumers/recorder"
)

// The recordings API: GET /list (segments by time range) and GET /get (one
// MP4 of a time range, across segments, cut on keyframes, with Range
// support).

// maxListRange bounds one /list request: every segment file in the range
// is read (its fragments, for its exact end).
const maxListRange = 31 * 24 * time.Hour

// RecordingJSON is one segment in /list's answer.
type RecordingJSON struct {
	File     string    `json:"file"` // relative to the camera's recordings directory
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Duration float64   `json:"duration"` // seconds
	Bytes    int64     `json:"bytes"`
	Open     bool      `json:"open"` // being written
	URL      string    `json:"url"`  // /get of the whole segment
}

// ListJSON is /list's answer.
type ListJSON struct {
	Camera     string          `json:"camera"`
	Start      time.Time       `json:"start"`
	End        time.Time       `json:"end"`
	Recordings []RecordingJSON `json:"recordings"`
}

// paramError is a bad query parameter: 400 naming it and its value.
type paramError struct {
	name, value, problem string
}

func (e *paramError) Error() string {
	return fmt.Sprintf("parameter %s=%q: %s", e.name, e.value, e.problem)
}

// cameraParam returns the camera named by the "camera" parameter; it may
// be left out when there is only one camera.
func (s *Server) cameraParam(q url.Values) (*camera, error) {
	name := q.Get("camera")
	if name == "" && len(s.order) == 1 {
		return s.cams[s.order[0]], nil
	}
	c, ok := s.cams[name]
	if !ok {
		return nil, &paramError{"camera", name, fmt.Sprintf("no such camera (cameras: %v)", s.order)}
	}
	return c, nil
}

// timeParam parses an RFC 3339 time; def is used when it is missing
// (zero def: required).
func timeParam(q url.Values, name string, def time.Time) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		if def.IsZero() {
			return time.Time{}, &paramError{name, v, "required: an RFC 3339 time such as 2026-12-06T05:00:00Z"}
		}
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, &paramError{name, v, "not an RFC 3339 time such as 2026-12-06T05:00:00Z"}
	}
	return t, nil
}

// durationParam parses a duration: Go syntax ("10s", "1m30s") or seconds
// ("10", "2.5").
func durationParam(q url.Values, name string) (time.Duration, error) {
	v := q.Get(name)
	if v == "" {
		return 0, &paramError{name, v, "required: a duration such as 10s, 1m30s or 90 (seconds)"}
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		f, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil || f != f || f > 1e9 {
			return 0, &paramError{name, v, "not a duration such as 10s, 1m30s or 90 (seconds)"}
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d <= 0 {
		return 0, &paramError{name, v, "must be positive"}
	}
	return d, nil
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, err := s.cameraParam(q)
	if err != nil {
		writeError(w, err)
		return
	}
	end, err := timeParam(q, "end", time.Now())
	if err != nil {
		writeError(w, err)
		return
	}
	start, err := timeParam(q, "start", end.Add(-24*time.Hour))
	if err != nil {
		writeError(w, err)
		return
	}
	if !end.After(start) {
		writeError(w, &paramError{"end", q.Get("end"), fmt.Sprintf("must be after start (%s)", start.Format(time.RFC3339Nano))})
		return
	}
	if end.Sub(start) > maxListRange {
		writeError(w, &paramError{"start", q.Get("start"), fmt.Sprintf("the range to end (%s) exceeds %v: ask for less at a time",
			end.Format(time.RFC3339Nano), maxListRange)})
		return
	}
	if c.cfg.Recordings == "" {
		writeError(w, httpError{http.StatusNotFound, fmt.Sprintf("camera %q has no recordings directory configured", c.cfg.Name)})
		return
	}
	recs, err := recorder.ListRecordings(c.cfg.Recordings, start, end)
	if err != nil {
		writeError(w, httpError{http.StatusInternalServerError, err.Error()})
		return
	}
	out := ListJSON{Camera: c.cfg.Name, Start: start.UTC(), End: end.UTC(), Recordings: []RecordingJSON{}}
	for _, rec := range recs {
		rel, err := filepath.Rel(c.cfg.Recordings, rec.Path)
		if err != nil {
			rel = filepath.Base(rec.Path)
		}
		u := url.Values{"camera": {c.cfg.Name}, "start": {rec.Start.Format(time.RFC3339Nano)},
			"duration": {rec.Duration().String()}}
		out.Recordings = append(out.Recordings, RecordingJSON{File: rel, Start: rec.Start, End: rec.End,
			Duration: rec.Duration().Seconds(), Bytes: rec.Bytes, Open: rec.Open, URL: "/get?" + u.Encode()})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, err := s.cameraParam(q)
	if err != nil {
		writeError(w, err)
		return
	}
	start, err := timeParam(q, "start", time.Time{})
	if err != nil {
		writeError(w, err)
		return
	}
	d, err := durationParam(q, "duration")
	if err != nil {
		writeError(w, err)
		return
	}
	if d > s.o.MaxClip {
		writeError(w, &paramError{"duration", q.Get("duration"), fmt.Sprintf("longer than the limit of %v", s.o.MaxClip)})
		return
	}
	if c.cfg.Recordings == "" {
		writeError(w, httpError{http.StatusNotFound, fmt.Sprintf("camera %q has no recordings directory configured", c.cfg.Name)})
		return
	}
	clip, err := s.clips.get(c.cfg, start, d, s.o.MaxClipBytes)
	var tooLarge *recorder.ClipTooLargeError
	switch {
	case errors.Is(err, recorder.ErrNoRecording):
		writeError(w, httpError{http.StatusNotFound, fmt.Sprintf("no recording of camera %q between %s and %s", c.cfg.Name,
			start.UTC().Format(time.RFC3339Nano), start.Add(d).UTC().Format(time.RFC3339Nano))})
		return
	case errors.As(err, &tooLarge):
		writeError(w, &paramError{"duration", q.Get("duration"), err.Error()})
		return
	case err != nil:
		writeError(w, httpError{http.StatusInternalServerError, err.Error()})
		return
	}
	name := fmt.Sprintf("%s-%s.mp4", c.cfg.Name, clip.Start.Format("2006-01-02T15-04-05.000Z"))
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", name))
	h.Set("X-Clip-Start", clip.Start.Format(time.RFC3339Nano))
	h.Set("X-Clip-End", clip.End.Format(time.RFC3339Nano))
	h.Set("X-Clip-Segments", strconv.Itoa(clip.Segments))
	h.Set("ETag", fmt.Sprintf(`"%x-%x-%x"`, clip.Start.UnixNano(), clip.End.UnixNano(), len(clip.Data)))
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(clip.Data))
}

// clipCache keeps the clips built lately: a <video> element fetches one
// clip in several range requests, which must see the same bytes (a
// recording still being written grows between them) and should not cost
// a build each.
type clipCache struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries []*clipEntry // oldest first
}

type clipEntry struct {
	dir     string
	start   time.Time
	d       time.Duration
	expires time.Time
	built   chan struct{} // closed once clip or err is set
	clip    *recorder.Clip
	err     error
}

// get returns the clip of cam's recordings from start for d, built once
// for all the requests that ask for it within the cache's ttl.
func (cc *clipCache) get(cam Camera, start time.Time, d time.Duration, limit int64) (*recorder.Clip, error) {
	now := time.Now()
	cc.mu.Lock()
	kept := cc.entries[:0]
	var e *clipEntry
	for _, x := range cc.entries {
		if now.After(x.expires) {
			continue
		}
		kept = append(kept, x)
		if x.dir == cam.Recordings && x.start.Equal(start) && x.d == d {
			e = x
		}
	}
	clear(cc.entries[len(kept):])
	cc.entries = kept
	if e != nil {
		cc.mu.Unlock()
		<-e.built
		return e.clip, e.err
	}
	e = &clipEntry{dir: cam.Recordings, start: start, d: d, expires: now.Add(cc.ttl), built: make(chan struct{})}
	if len(cc.entries) >= cc.max {
		cc.entries = append(cc.entries[:0], cc.entries[1:]...)
	}
	cc.entries = append(cc.entries, e)
	cc.mu.Unlock()
	clip, err := recorder.MakeClip(cam.Recordings, start, start.Add(d), limit)
	cc.mu.Lock()
	e.clip, e.err = clip, err
	if err != nil {
		e.expires = time.Time{} // not kept: the next request tries again
	}
	cc.mu.Unlock()
	close(e.built)
	return e.clip, e.err
}
