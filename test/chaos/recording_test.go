package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framehub/framehub/consumers/recorder"
	"github.com/framehub/framehub/test/internal/grouptest"
)

// span is the capture time covered by one recorded fragment.
type span struct {
	from, to time.Time
	file     string
}

// hole is a stretch of capture time missing from the recording, or (when
// overlap) recorded twice.
type hole struct {
	from, to time.Time
	after    string // the file before the hole
	overlap  bool
	cause    string // the fault window that explains it, if any
	logged   bool   // the recorder logged a warning about it
}

// recordedSpans reads every segment (closed and being written) and returns
// the capture-time span of each fragment, in capture order.
func recordedSpans(paths []string) ([]span, error) {
	var out []span
	for _, p := range paths {
		seg, err := recorder.ReadSegmentFile(p)
		if err != nil {
			return nil, fmt.Errorf("read segment %s: %w", p, err)
		}
		if seg.Timescale == 0 {
			return nil, fmt.Errorf("segment %s: no timescale", p)
		}
		for _, f := range seg.Fragments {
			if !f.HasInfo || len(f.Samples) == 0 {
				return nil, fmt.Errorf("segment %s: fragment %d has no framehub info box", p, f.Seq)
			}
			var ticks uint64
			for _, s := range f.Samples {
				ticks += uint64(s.Duration)
			}
			from := time.Unix(0, f.Info.FirstReal)
			out = append(out, span{from, from.Add(time.Duration(ticks * uint64(time.Second) / uint64(seg.Timescale))), p})
		}
	}
	slices.SortFunc(out, func(a, b span) int { return a.from.Compare(b.from) })
	return out, nil
}

// holes finds where consecutive fragments leave more than tolerance of
// capture time unrecorded, or record the same time twice.
func holes(spans []span, tolerance time.Duration) []hole {
	var hs []hole
	for i := 1; i < len(spans); i++ {
		prev, cur := spans[i-1], spans[i]
		switch d := cur.from.Sub(prev.to); {
		case d > tolerance:
			hs = append(hs, hole{from: prev.to, to: cur.from, after: prev.file})
		case d < -tolerance:
			hs = append(hs, hole{from: cur.from, to: prev.to, after: prev.file, overlap: true})
		}
	}
	return hs
}

// logLine is a line of a child's log as the supervisor relays it.
type logLine struct {
	at    time.Time
	level string
	text  string
}

// childLog returns the warnings and errors that process name logged, from
// the supervisor's log ("name | time=... level=WARN msg=...").
func childLog(path, name string) ([]logLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	prefix := name + " | "
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		l := logLine{text: line}
		for _, field := range strings.Fields(line) {
			switch {
			case strings.HasPrefix(field, "time="):
				l.at, _ = time.Parse(time.RFC3339Nano, strings.TrimPrefix(field, "time="))
			case strings.HasPrefix(field, "level="):
				l.level = strings.TrimPrefix(field, "level=")
			}
			if !l.at.IsZero() && l.level != "" {
				break
			}
		}
		if l.level == "WARN" || l.level == "ERROR" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// deletedWithin counts the deleted segments (deletedSegments' keys) whose
// start, which the recorder writes in the file name, lies in [from, to).
func deletedWithin(deleted map[string]string, from, to time.Time) int {
	n := 0
	for file := range deleted {
		start, ok := recorder.SegmentStart(filepath.Base(file))
		if ok && !start.Before(from) && start.Before(to) {
			n++
		}
	}
	return n
}

// deletedSegments returns the segments the recorder logged deleting
// ("retention: deleted segment file=... reason=..."), with the reason.
func deletedSegments(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "recorder | ")
		if !ok || !strings.Contains(line, `msg="retention: deleted segment"`) {
			continue
		}
		var file, reason string
		for _, field := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(field, "file="); ok {
				file = v
			} else if v, ok := strings.CutPrefix(field, "reason="); ok {
				reason = v
			}
		}
		if file != "" {
			out[file] = reason
		}
	}
	return out, sc.Err()
}

// tracker follows the recording while the group runs: retention and a
// full disk delete the oldest segments, so each segment is read (and, once
// closed, played) when it appears, and its fragments kept after it is gone.
type tracker struct {
	dir    string
	mu     sync.Mutex
	spans  map[string][]span // by segment name without ".part"
	played map[string]error  // closed segments checked, by path
	// vanished counts segments deleted while being checked.
	vanished int
}

func newTracker(dir string) *tracker {
	return &tracker{dir: dir, spans: map[string][]span{}, played: map[string]error{}}
}

// run scans every 5 s until ctx is done.
func (tr *tracker) run(ctx context.Context) {
	tk := time.NewTicker(5 * time.Second)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		tr.scan()
	}
}

// scan reads the segments present now. A segment being written is read
// again on every scan (its fragments grow); a closed one once, and played.
func (tr *tracker) scan() {
	for _, p := range grouptest.Files(tr.dir, ".mp4.part") {
		if ss, err := recordedSpans([]string{p}); err == nil { // a torn tail is fine: ReadSegmentFile stops before it
			tr.mu.Lock()
			tr.spans[strings.TrimSuffix(p, ".part")] = ss
			tr.mu.Unlock()
		}
	}
	for _, p := range grouptest.Files(tr.dir, ".mp4") {
		tr.mu.Lock()
		_, done := tr.played[p]
		tr.mu.Unlock()
		if done {
			continue
		}
		ss, err := recordedSpans([]string{p})
		if err == nil {
			err = grouptest.Plays(p)
		}
		if _, serr := os.Stat(p); errors.Is(err, fs.ErrNotExist) || errors.Is(serr, fs.ErrNotExist) {
			// Deleted while being read: retention, or a full disk freeing
			// space (the recorder deletes its oldest segments, here often
			// all of them). Neither this check nor the recording can use it.
			tr.mu.Lock()
			tr.vanished++
			tr.mu.Unlock()
			continue
		}
		tr.mu.Lock()
		if ss != nil {
			tr.spans[p] = ss
		}
		tr.played[p] = err
		tr.mu.Unlock()
	}
}

// result returns every fragment's span in capture order, and the closed
// segments with the error each one's check found (nil: plays).
func (tr *tracker) result() ([]span, map[string]error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var all []span
	for _, ss := range tr.spans {
		all = append(all, ss...)
	}
	slices.SortFunc(all, func(a, b span) int { return a.from.Compare(b.from) })
	return all, maps.Clone(tr.played)
}

// TestDeletedWithin: segment starts are read from the recorder's file names
// (UTC), and only those inside the hole count.
func TestDeletedWithin(t *testing.T) {
	deleted := map[string]string{
		"/r/2026-12-04/2026-12-04T20-58-53.862Z.mp4": "enospc",
		"/r/2026-12-04/2026-12-04T20-58-58.861Z.mp4": "enospc",
		"/r/2026-12-04/2026-12-04T20-59-03.862Z.mp4": "enospc",
		"/r/2026-12-04/not-a-segment.mp4":            "enospc",
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if n := deletedWithin(deleted, at("2026-12-04T20:59:02.866Z"), at("2026-12-04T20:59:08.862Z")); n != 1 {
		t.Fatalf("one segment starts inside the hole, counted %d", n)
	}
	if n := deletedWithin(deleted, at("2026-12-04T20:58:53.862Z"), at("2026-12-04T20:59:03.862Z")); n != 2 {
		t.Fatalf("from is inclusive and to exclusive: want 2, counted %d", n)
	}
}
