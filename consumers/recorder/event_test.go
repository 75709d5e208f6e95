package recorder

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/internal/testutil"
)

// eventRecorder is a recorder in event mode fed by hand: access units whose
// capture times end now.
type eventRecorder struct {
	*Recorder
	t   *testing.T
	rng *rand.Rand
	seq uint64
}

func newEventRecorder(t *testing.T, pre, post time.Duration) *eventRecorder {
	r, err := New(Config{Mode: ModeEvent, Dir: t.TempDir(), Pre: pre, Post: post, Logger: testutil.Logger(t, slog.LevelError)})
	require.NoError(t, err)
	return &eventRecorder{Recorder: r, t: t, rng: rand.New(rand.NewPCG(21, 22))}
}

// feed routes n access units (GOPs of 15) captured one frame apart up to now.
func (e *eventRecorder) feed(n int) {
	now := clock.Mono()
	for i := 0; i < n; i++ {
		e.seq++
		a := testAU(e.t, e.rng, e.seq, 15)
		a.mono = now - int64(n-1-i)*testFrame
		e.route(a)
	}
}

// queued pops what the recorder queued for the writer.
func (e *eventRecorder) queued() (cmds []item, aus []*au) {
	for {
		it, ok, _ := e.q.pop()
		if !ok {
			return
		}
		if it.au != nil {
			aus = append(aus, it.au)
		} else {
			cmds = append(cmds, it)
		}
	}
}

// TestEventRecording: an event queues the pre-event buffer from the newest
// keyframe captured at least pre before it, then live frames until post
// after it, then the end; the buffer holds copies starting at a keyframe.
func TestEventRecording(t *testing.T) {
	e := newEventRecorder(t, time.Second, 500*time.Millisecond)
	e.feed(150) // 5 s
	require.True(t, e.ring[0].key)
	require.LessOrEqual(t, e.ring[0].mono, e.ring[len(e.ring)-1].mono-int64(time.Second), "the buffer covers pre")
	require.LessOrEqual(t, len(e.ring), 30+15, "pre and at most one GOP more")
	cmds, aus := e.queued()
	require.Empty(t, cmds)
	require.Empty(t, aus, "nothing recorded before an event")

	at := clock.Mono()
	resp, err := e.Event(context.Background(), EventRequest{Label: "door 1!"})
	require.NoError(t, err)
	require.Contains(t, resp.File, "-event-door1.mp4")
	require.InDelta(t, 1.0, resp.PreSeconds, 0.5+0.05, "a keyframe every 0.5 s")
	require.GreaterOrEqual(t, resp.PreSeconds, 1.0)
	require.Equal(t, 0.5, resp.PostSeconds)
	cmds, aus = e.queued()
	require.Len(t, cmds, 1)
	require.Equal(t, cmdCut, cmds[0].cmd)
	require.True(t, strings.HasSuffix(resp.File, cmds[0].name+".mp4"))
	require.True(t, aus[0].key)
	require.LessOrEqual(t, aus[0].mono, at-int64(time.Second))
	require.Greater(t, aus[0].mono, at-int64(time.Second)-int64(500*time.Millisecond)-testFrame)
	require.Equal(t, e.seq, aus[len(aus)-1].seq, "the whole buffer from there")

	// A second event extends the recording.
	resp2, err := e.Event(context.Background(), EventRequest{PostSeconds: ptr(2.0)})
	require.NoError(t, err)
	require.True(t, resp2.Extended)
	require.Equal(t, resp.File, resp2.File)
	e.feed(3) // captured now: recorded
	cmds, aus = e.queued()
	require.Empty(t, cmds)
	require.Len(t, aus, 3)

	// Frames captured after the end close the recording.
	e.ev.until = clock.Mono() - 1
	e.feed(1)
	cmds, aus = e.queued()
	require.Equal(t, []item{{cmd: cmdClose}}, cmds)
	require.Empty(t, aus)
	require.False(t, e.eventActive())
}

// TestEventWithoutVideo: an event before any keyframe waits for one (the
// recorder asks the producer), and gives up at the request's deadline.
func TestEventWithoutVideo(t *testing.T) {
	e := newEventRecorder(t, time.Second, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.Event(ctx, EventRequest{})
	require.ErrorIs(t, err, ErrNoVideo)

	done := make(chan EventResponse, 1)
	go func() {
		resp, err := e.Event(context.Background(), EventRequest{})
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	e.feed(1) // a keyframe: the armed event starts with it
	select {
	case resp := <-done:
		require.NotEmpty(t, resp.File)
		require.Zero(t, resp.PreSeconds)
	case <-time.After(10 * time.Second):
		t.Fatal("the event did not start at the keyframe")
	}
	_, err = newEventRecorder(t, 0, 0).Recorder.Event(context.Background(), EventRequest{PreSeconds: ptr(-1.0)})
	require.Error(t, err)
	r, err := New(Config{Dir: t.TempDir(), Logger: testutil.Logger(t, slog.LevelError)})
	require.NoError(t, err)
	_, err = r.Event(context.Background(), EventRequest{})
	require.ErrorIs(t, err, ErrNotEventMode)
}

func ptr[T any](v T) *T { return &v }

func TestToAVCC(t *testing.T) {
	au := []byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 4, 5, 6, 0, 0, 1, 0x06, 7}
	sample, sps, pps, err := toAVCC(au)
	require.NoError(t, err)
	require.Equal(t, []byte{0x67, 1, 2}, sps)
	require.Equal(t, []byte{0x68, 3}, pps, "trailing zeros of a 4-byte start code are not data")
	require.Equal(t, []byte{0, 0, 0, 4, 0x65, 4, 5, 6, 0, 0, 0, 2, 0x06, 7}, sample)
	_, _, _, err = toAVCC([]byte{1, 2, 3})
	require.Error(t, err)
	_, _, _, err = toAVCC([]byte{0, 0, 1, 0x09, 0xf0})
	require.Error(t, err, "no slice")
}

func TestEventHTTP(t *testing.T) {
	post := func(r *Recorder, body string) (int, string) {
		w := httptest.NewRecorder()
		r.Handler().ServeHTTP(w, httptest.NewRequest("POST", "/record/event", strings.NewReader(body)))
		return w.Code, w.Body.String()
	}
	cont, err := New(Config{Dir: t.TempDir(), Logger: testutil.Logger(t, slog.LevelError)})
	require.NoError(t, err)
	code, body := post(cont, "")
	require.Equal(t, http.StatusConflict, code, body)
	require.Contains(t, body, "not in event mode")

	e := newEventRecorder(t, time.Second, time.Second)
	code, body = post(e.Recorder, "{bad")
	require.Equal(t, http.StatusBadRequest, code, body)
	code, body = post(e.Recorder, `{"post_seconds": -1}`)
	require.Equal(t, http.StatusBadRequest, code, body)
	e.feed(60)
	code, body = post(e.Recorder, `{"pre_seconds": 1, "label": "x"}`)
	require.Equal(t, http.StatusOK, code, body)
	var resp EventResponse
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	require.Contains(t, resp.File, "-event-x.mp4")
	require.False(t, resp.Start.IsZero())

	// Fed by the test, not by a producer: not subscribed, so unhealthy.
	w := httptest.NewRecorder()
	e.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
	var h Health
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &h))
	require.Equal(t, "not_connected", h.Status)
	require.Contains(t, h.Reason, "not subscribed to the producer at "+e.cfg.Producer)
	e.st.connected.Store(true)
	w = httptest.NewRecorder()
	e.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &h))
	require.Equal(t, "ok", h.Status)
	require.True(t, h.OK)
}
