package recorder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"
)

// Recordings read back: what the web daemon's /list and /get serve. They
// read the segment files (closed ones and the one being written, whose
// complete fragments are durable) and never write.

// Recording is one segment file found in a recordings directory.
type Recording struct {
	Path  string    `json:"path"`
	Start time.Time `json:"start"` // CLOCK_REALTIME capture time of its first frame
	End   time.Time `json:"end"`   // ... and the end of its last frame
	Bytes int64     `json:"bytes"`
	// Open is a segment still being written (*.mp4.part): End is where its
	// last durable fragment ends.
	Open bool `json:"open"`
}

// Duration is how much video the recording holds.
func (r Recording) Duration() time.Duration { return r.End.Sub(r.Start) }

// ErrNoRecording is returned when no recording covers the asked range.
var ErrNoRecording = errors.New("no recording in this range")

// ListRecordings returns the segments under dir that hold video between
// from and to (half-open), oldest first. Only the files whose names say
// they may overlap the range are read. A file that cannot be read (being
// deleted by retention, not a segment) is left out.
func ListRecordings(dir string, from, to time.Time) ([]Recording, error) {
	files, err := listSegments(OSFS{}, dir)
	if err != nil {
		return nil, err
	}
	var out []Recording
	for _, c := range candidates(files, from, to) {
		r, _, err := readRecording(c)
		if err != nil {
			continue
		}
		if r.End.After(from) && r.Start.Before(to) {
			out = append(out, r)
		}
	}
	return out, nil
}

// candidates returns the files whose names say they may hold video in
// [from, to): those starting before to, from the last one starting at or
// before from.
func candidates(files []segFile, from, to time.Time) []segFile {
	start := func(f segFile) time.Time { t, _ := SegmentStart(f.base); return t }
	i := sort.Search(len(files), func(i int) bool { return start(files[i]).After(from) })
	if i > 0 {
		i--
	}
	j := sort.Search(len(files), func(j int) bool { return !start(files[j]).Before(to) })
	if i >= j {
		return nil
	}
	return files[i:j]
}

// readRecording reads a segment file's fragments and its times.
func readRecording(f segFile) (Recording, *Segment, error) {
	seg, err := readSegmentFile(OSFS{}, f.path)
	if err != nil {
		return Recording{}, nil, err
	}
	if len(seg.Fragments) == 0 {
		return Recording{}, nil, fmt.Errorf("recorder: segment %s holds no video", f.path)
	}
	start, _ := SegmentStart(f.base)
	if seg.HasInfo && seg.Info.StartReal > 0 {
		start = time.Unix(0, seg.Info.StartReal)
	}
	first := seg.Fragments[0].Samples[0].DTS
	end := start.Add(tickDuration(seg.End() - first))
	return Recording{Path: f.path, Start: start.UTC(), End: end.UTC(), Bytes: seg.Size, Open: f.part}, seg, nil
}

// tickDuration converts track ticks to a duration.
func tickDuration(t uint64) time.Duration {
	return time.Duration(t/timescale*uint64(time.Second)) + time.Duration(t%timescale*uint64(time.Second)/timescale)
}

// Clip is one MP4 file cut from the recordings.
type Clip struct {
	// Data is the file: a fragmented MP4 (ftyp, moov with the duration
	// set, then one moof and mdat per source fragment) that players and
	// <video> play and seek like any MP4.
	Data []byte
	// Start and End are the capture times of the clip's first frame and of
	// the end of its last one: Start is the keyframe at or before the
	// asked start, End the keyframe at or after the asked end (or where
	// the recordings stop).
	Start, End time.Time
	// Segments is how many segment files the clip took frames from.
	Segments int
}

// ClipTooLargeError is a clip that would exceed the size limit given to
// MakeClip.
type ClipTooLargeError struct{ Limit int64 }

func (e *ClipTooLargeError) Error() string {
	return fmt.Sprintf("the clip would exceed %d bytes: ask for a shorter duration", e.Limit)
}

// MakeClip returns one MP4 of the video recorded under dir between from and
// to, across segment boundaries, cut on keyframes: it starts at the last
// keyframe at or before from (or the first after it, when the recordings
// begin later) and ends before the first keyframe at or after to. Frame
// times follow the capture times, so a hole between two segments stays a
// hole (the player holds the last picture). The clip ends early at a
// segment whose picture size or parameter sets differ from the first's (a
// camera reconfigured). It fails with ErrNoRecording when nothing was
// recorded in the range, and *ClipTooLargeError when the clip would exceed
// limit bytes.
func MakeClip(dir string, from, to time.Time, limit int64) (*Clip, error) {
	files, err := listSegments(OSFS{}, dir)
	if err != nil {
		return nil, err
	}
	cb := clipBuilder{from: from, to: to, limit: limit}
	for _, f := range candidates(files, from, to) {
		done, err := cb.add(f)
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
	}
	return cb.finish()
}

// clipSample is a sample chosen for a clip.
type clipSample struct {
	fragSample
	at time.Time // capture time
}

// clipBuilder collects the samples of a clip, segment by segment.
type clipBuilder struct {
	from, to time.Time
	limit    int64

	first      *Segment // the clip's track parameters
	collecting bool     // a keyframe starting the clip was found
	frags      [][]clipSample
	data       [][][]byte
	cur        []clipSample // the fragment being taken
	curData    [][]byte
	bytes      int64
	segments   int
	lastSeg    *Segment
}

// add takes the samples of segment file f that belong to the clip; done
// reports that the clip is complete.
func (cb *clipBuilder) add(f segFile) (done bool, err error) {
	rec, seg, err := readRecording(f)
	if err != nil {
		return false, nil // unreadable (removed by retention meanwhile): skip it
	}
	if cb.first != nil && (seg.Width != cb.first.Width || seg.Height != cb.first.Height ||
		string(seg.SPS) != string(cb.first.SPS) || string(seg.PPS) != string(cb.first.PPS)) {
		if rec.Start.After(cb.from) {
			return true, nil // the camera changed within the range: the clip ends here
		}
		cb.reset() // ... before the range: the clip starts in this segment
	}
	file, err := os.Open(f.path)
	if err != nil {
		return false, nil // removed by retention meanwhile: skip it
	}
	defer file.Close()
	origin := seg.Fragments[0].Samples[0].DTS
	for _, fr := range seg.Fragments {
		for _, s := range fr.Samples {
			at := rec.Start.Add(tickDuration(s.DTS - origin))
			if s.Sync {
				switch {
				case !at.Before(cb.to):
					cb.endFragment()
					return true, nil
				case !at.After(cb.from):
					cb.reset() // a later keyframe at or before from: start there
					cb.collecting, cb.first = true, seg
				case !cb.collecting:
					cb.collecting, cb.first = true, seg // the recordings begin after from
				}
			}
			if !cb.collecting {
				continue
			}
			b := make([]byte, s.Size)
			if _, err := file.ReadAt(b, s.Offset); err != nil {
				return false, fmt.Errorf("recorder: read %d bytes at %d of %s: %w", s.Size, s.Offset, f.path, err)
			}
			if cb.bytes += int64(len(b)); cb.limit > 0 && cb.bytes > cb.limit {
				return false, &ClipTooLargeError{Limit: cb.limit}
			}
			if cb.lastSeg != seg {
				cb.lastSeg = seg
				cb.segments++
			}
			cb.cur = append(cb.cur, clipSample{fragSample: fragSample{dur: s.Duration, cto: s.CTO, size: s.Size, key: s.Sync}, at: at})
			cb.curData = append(cb.curData, b)
		}
		cb.endFragment()
	}
	return false, nil
}

// reset forgets the samples taken so far.
func (cb *clipBuilder) reset() {
	cb.first, cb.collecting = nil, false
	cb.frags, cb.data, cb.cur, cb.curData = nil, nil, nil, nil
	cb.bytes, cb.segments, cb.lastSeg = 0, 0, nil
}

// endFragment closes the fragment being taken.
func (cb *clipBuilder) endFragment() {
	if len(cb.cur) == 0 {
		return
	}
	cb.frags = append(cb.frags, cb.cur)
	cb.data = append(cb.data, cb.curData)
	cb.cur, cb.curData = nil, nil
}

// finish lays the kept samples on the clip's timeline and writes the file.
func (cb *clipBuilder) finish() (*Clip, error) {
	if len(cb.frags) == 0 {
		return nil, ErrNoRecording
	}
	lastFrag := cb.frags[len(cb.frags)-1]
	if last := lastFrag[len(lastFrag)-1]; !last.at.Add(tickDuration(uint64(last.dur))).After(cb.from) {
		return nil, ErrNoRecording // the recordings end before the range
	}
	start := cb.frags[0][0].at
	tp := trackParams{width: cb.first.Width, height: cb.first.Height, sps: cb.first.SPS, pps: cb.first.PPS}
	info := cb.first.Info
	info.StartReal = start.UnixNano()
	init, df := marshalInit(tp, info)
	w := boxes{b: init}
	var next int64 // ticks after the previous sample
	for i, fr := range cb.frags {
		samples := make([]fragSample, len(fr))
		for k, s := range fr {
			samples[k] = s.fragSample
			if k == 0 {
				// Each fragment starts at its capture time (a hole between
				// segments stays a hole), never before the previous end.
				samples[k].dts = max(ticks(int64(s.at.Sub(start))), next)
			} else {
				samples[k].dts = samples[k-1].dts + int64(samples[k-1].dur)
			}
		}
		last := samples[len(samples)-1]
		next = last.dts + int64(last.dur)
		w.moofMdat(uint32(i+1), samples, cb.data[i])
	}
	for _, off := range df {
		if off != 0 {
			binary.BigEndian.PutUint64(w.b[off:], uint64(next))
		}
	}
	return &Clip{Data: w.b, Start: start.UTC(), End: start.Add(tickDuration(uint64(next))).UTC(), Segments: cb.segments}, nil
}
