package recorder

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/framehub/framehub/internal/clock"
)

// Event mode. The receiver keeps a pre-event buffer: copied access units
// (never leases: a buffer of leases would pin the producer's pool for Pre
// seconds), starting at a keyframe, reaching back at least Pre. An event
// (POST /record/event) starts a segment at the newest buffered keyframe
// captured at least pre seconds before it, queues the buffer from there,
// and records live until post seconds after it. An event during a
// recording extends it. The files are named like continuous segments, with
// "-event" and the label appended.

var (
	// ErrNotEventMode is returned by Event when the recorder records
	// continuously (Mode is not ModeEvent).
	ErrNotEventMode = errors.New("recorder: not in event mode (-mode event)")
	// ErrNoVideo is returned by Event when no keyframe came from the
	// producer to start the recording before the request's deadline. The
	// event stays armed: it is recorded when video comes, if before its end.
	ErrNoVideo = errors.New("recorder: no video from the producer yet")
)

// maxPost bounds an event's post_seconds.
const maxPost = time.Hour

// EventRequest is the body of POST /record/event. Every field is optional.
type EventRequest struct {
	// PreSeconds is the video before the event to include; default and
	// maximum: the recorder's -pre.
	PreSeconds *float64 `json:"pre_seconds,omitempty"`
	// PostSeconds is the video after the event; default -post, at most
	// 3600.
	PostSeconds *float64 `json:"post_seconds,omitempty"`
	// Label is appended to the file name; only letters, digits, '-' and
	// '_' are kept, at most 32.
	Label string `json:"label,omitempty"`
}

// EventResponse answers POST /record/event.
type EventResponse struct {
	// File is the event's segment file as it is named once closed (while
	// written it ends in .part); a long event continues in later segments.
	File string `json:"file"`
	// Start is the capture time (UTC) of the first frame recorded.
	Start time.Time `json:"start"`
	// PreSeconds is the video before the event the file holds (less than
	// asked when the buffer held less); PostSeconds what it will hold after.
	PreSeconds  float64 `json:"pre_seconds"`
	PostSeconds float64 `json:"post_seconds"`
	// Extended is true when an event recording was under way: it now lasts
	// until this event's post time.
	Extended bool `json:"extended"`
}

type eventState struct {
	recording bool
	armed     bool  // waiting for a keyframe to start
	until     int64 // capture time (mono) of the last access unit to record
	at        int64 // capture time of the event
	suffix    string
	resp      EventResponse
	started   chan struct{} // closed when an armed event starts (or expires)
}

// Event records an event: pre seconds before now, post seconds after. See
// EventRequest for the defaults. When no keyframe is buffered yet it waits
// for the producer's next one, until ctx is done (ErrNoVideo).
func (r *Recorder) Event(ctx context.Context, req EventRequest) (EventResponse, error) {
	if r.cfg.Mode != ModeEvent {
		return EventResponse{}, ErrNotEventMode
	}
	pre, post := r.cfg.Pre, r.cfg.Post
	if req.PreSeconds != nil {
		if *req.PreSeconds < 0 {
			return EventResponse{}, fmt.Errorf("recorder: event: pre_seconds %v must not be negative", *req.PreSeconds)
		}
		pre = min(pre, time.Duration(*req.PreSeconds*float64(time.Second)))
	}
	if req.PostSeconds != nil {
		if *req.PostSeconds < 0 || *req.PostSeconds > maxPost.Seconds() {
			return EventResponse{}, fmt.Errorf("recorder: event: post_seconds %v must be in [0, %v]", *req.PostSeconds, maxPost.Seconds())
		}
		post = time.Duration(*req.PostSeconds * float64(time.Second))
	}
	suffix := "-event"
	if l := sanitizeLabel(req.Label); l != "" {
		suffix += "-" + l
	}
	now := clock.Mono()
	r.m.events.Inc()

	r.mu.Lock()
	ev := &r.ev
	if ev.recording || ev.armed {
		ev.until = max(ev.until, now+int64(post))
		started := ev.started
		r.mu.Unlock()
		r.log.Info("event during a recording: extended", "post", post)
		resp, err := r.waitStarted(ctx, started)
		resp.Extended = err == nil
		return resp, err
	}
	*ev = eventState{until: now + int64(post), at: now, suffix: suffix, resp: EventResponse{PostSeconds: post.Seconds()}}
	if i := r.eventStartLocked(now - int64(pre)); i >= 0 {
		r.startEventLocked(i)
		resp := ev.resp
		r.mu.Unlock()
		return resp, nil
	}
	ev.armed, ev.started = true, make(chan struct{})
	started := ev.started
	r.mu.Unlock()
	r.requestKeyframe()
	return r.waitStarted(ctx, started)
}

// waitStarted waits for an armed event to start (started nil: it has).
func (r *Recorder) waitStarted(ctx context.Context, started chan struct{}) (EventResponse, error) {
	if started != nil {
		select {
		case <-started:
		case <-ctx.Done():
			return EventResponse{}, fmt.Errorf("%w: %w", ErrNoVideo, ctx.Err())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ev.resp.File == "" {
		return EventResponse{}, ErrNoVideo // expired before any video came
	}
	return r.ev.resp, nil
}

// eventStartLocked picks the buffered keyframe to start at: the newest one
// captured at or before from, else the oldest one; -1 when there is none.
func (r *Recorder) eventStartLocked(from int64) int {
	best := -1
	for i, a := range r.ring {
		if !a.key {
			continue
		}
		if a.mono <= from || best < 0 {
			best = i
		}
		if a.mono > from {
			break
		}
	}
	return best
}

// startEventLocked starts the event's segment at r.ring[i] and queues the
// buffer from there.
func (r *Recorder) startEventLocked(i int) {
	ev := &r.ev
	first := r.ring[i]
	name := segmentName(first.real, ev.suffix)
	ev.resp.File = filepath.Join(segmentDir(r.cfg.Dir, name), name+segExt)
	ev.resp.Start = time.Unix(0, first.real).UTC()
	ev.resp.PreSeconds = max(0, time.Duration(ev.at-first.mono).Seconds())
	r.q.command(cmdCut, name, ev.suffix)
	for _, a := range r.ring[i:] {
		r.push(a)
	}
	ev.recording = true
	if ev.armed {
		ev.armed = false
		close(ev.started)
		ev.started = nil
	}
	r.log.Info("event recording started", "file", ev.resp.File, "pre", time.Duration(ev.at-first.mono).Round(time.Millisecond),
		"until_in", time.Duration(ev.until-clock.Mono()).Round(time.Millisecond))
}

// route handles an access unit in event mode: into the pre-event buffer,
// and to the writer while an event is being recorded.
func (r *Recorder) route(a *au) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ringAdd(a)
	ev := &r.ev
	switch {
	case ev.armed && a.key:
		if a.mono > ev.until {
			// Video came back after the event's end: nothing to record.
			ev.armed = false
			close(ev.started)
			ev.started = nil
			return
		}
		r.startEventLocked(len(r.ring) - 1)
	case ev.recording && a.mono > ev.until:
		ev.recording = false
		r.q.command(cmdClose, "", "")
		r.log.Info("event recording ended", "file", ev.resp.File)
	case ev.recording:
		r.push(a)
	}
}

// ringAdd appends to the pre-event buffer and trims it: it starts at the
// newest keyframe captured at least Pre before a, and holds at most
// QueueBytes (whole GOPs are let go first).
func (r *Recorder) ringAdd(a *au) {
	r.ring = append(r.ring, a)
	r.ringB += int64(a.size())
	cut := 0
	for i, x := range r.ring {
		if x.mono > a.mono-int64(r.cfg.Pre) {
			break
		}
		if x.key {
			cut = i
		}
	}
	var dropped int64
	for i := 0; i < cut; i++ {
		dropped += int64(r.ring[i].size())
	}
	for r.ringB-dropped > r.cfg.QueueBytes {
		next := -1
		for i := cut + 1; i < len(r.ring); i++ {
			if r.ring[i].key {
				next = i
				break
			}
		}
		if next < 0 {
			break
		}
		for i := cut; i < next; i++ {
			dropped += int64(r.ring[i].size())
		}
		cut = next
	}
	if cut > 0 {
		clear(r.ring[:cut])
		r.ring = r.ring[cut:]
		r.ringB -= dropped
	}
}

// eventActive reports whether an event is being recorded.
func (r *Recorder) eventActive() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ev.recording
}

func sanitizeLabel(l string) string {
	var b strings.Builder
	for _, c := range l {
		if b.Len() >= 32 {
			break
		}
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteRune(c)
		}
	}
	return b.String()
}
