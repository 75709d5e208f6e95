package recorder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names. A segment is named by the UTC capture time of its first
// frame, which sorts by name: Dir/2026-11-22/2026-11-22T00-41-12.345Z.mp4
// (event files add "-event" and the event's label). While it is written it
// carries partSuffix, so a closed segment is exactly a *.mp4 file.
const (
	dayLayout  = "2006-01-02"
	nameLayout = "2006-01-02T15-04-05.000Z"
	segExt     = ".mp4"
	partSuffix = ".part"
)

// segmentName is the base name (no extension) of a segment whose first
// frame was captured at real (CLOCK_REALTIME ns); suffix is "" or an
// event's "-event-label".
func segmentName(real int64, suffix string) string {
	return time.Unix(0, real).UTC().Format(nameLayout) + suffix
}

// segmentDir is the directory of a segment named name under root.
func segmentDir(root, name string) string {
	return filepath.Join(root, name[:len(dayLayout)])
}

// SegmentStart parses the start time (UTC) back from a segment's base file
// name (closed, being written, or an event's); ok is false for any other
// name.
func SegmentStart(base string) (start time.Time, ok bool) {
	if len(base) < len(nameLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(nameLayout, base[:len(nameLayout)])
	return t, err == nil
}

// segment is the segment being written. The writer goroutine owns it.
type segment struct {
	fs    FS
	f     File
	path  string // while written: name.mp4.part
	final string // once closed: name.mp4
	info  SegmentInfo
	track trackParams
	df    durationFields
	size  int64  // bytes written and durable: the next fragment goes here
	seq   uint32 // mfhd sequence number of the next fragment
	end   int64  // media time after the last written sample, ticks

	frames int   // samples written
	bytes  int64 // sample bytes written

	// The last sample written or pending: continuity of the next one.
	lastSeq  uint64
	lastDTS  int64 // producer ns
	keyAsked bool  // a keyframe was requested to end this segment
}

// createSegment creates dir/name.mp4.part exclusively (a name taken gets a
// numeric suffix), writes the init boxes and makes file and entry durable.
func createSegment(fsys FS, root, name string, track trackParams, info SegmentInfo) (*segment, error) {
	dir := segmentDir(root, name)
	if err := fsys.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("recorder: create directory %s: %w", dir, err)
	}
	var (
		f    File
		path string
		err  error
	)
	for i := 1; ; i++ {
		base := name
		if i > 1 {
			base = fmt.Sprintf("%s-%d", name, i)
		}
		path = filepath.Join(dir, base+segExt+partSuffix)
		f, err = fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil || !errors.Is(err, fs.ErrExist) || i == 100 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("recorder: create segment %s: %w", path, err)
	}
	init, df := marshalInit(track, info)
	s := &segment{fs: fsys, f: f, path: path, final: strings.TrimSuffix(path, partSuffix), info: info, track: track, df: df, seq: 1}
	if err := s.write(init, -1); err != nil {
		_ = f.Close()
		_ = fsys.Remove(path)
		return nil, err
	}
	if err := fsys.SyncDir(dir); err != nil {
		_ = f.Close()
		_ = fsys.Remove(path)
		return nil, fmt.Errorf("recorder: create segment %s: %w", path, err)
	}
	return s, nil
}

// reopenSegment opens a segment left by a crash to append to it. seg is
// what ReadSegment found in it (already truncated to seg.ValidEnd).
func reopenSegment(fsys FS, path string, seg *Segment) (*segment, error) {
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("recorder: reopen segment %s: %w", path, err)
	}
	last := seg.Fragments[len(seg.Fragments)-1].Info
	s := &segment{
		fs: fsys, f: f, path: path, final: strings.TrimSuffix(path, partSuffix), info: seg.Info, df: seg.durations,
		size: seg.ValidEnd, seq: seg.nextSeq, end: int64(seg.End()), lastSeq: last.LastSeq(), lastDTS: last.LastDTS,
	}
	for _, fr := range seg.Fragments {
		s.frames += len(fr.Samples)
		for _, smp := range fr.Samples {
			s.bytes += int64(smp.Size)
		}
	}
	return s, nil
}

// write appends b at s.size and fsyncs. With end >= 0 (b is a fragment
// ending the media at end ticks) the durations in the init boxes are
// updated in the same fsync, so that a segment a crash leaves unfinalised
// still says how long it is. On failure the file is cut back to s.size (a
// torn fragment must not stay in front of the next one); the error says
// whether that worked.
func (s *segment) write(b []byte, end int64) error {
	_, err := s.f.WriteAt(b, s.size)
	if err == nil && end >= 0 {
		err = patchDurations(s.f, s.df, end)
	}
	if err == nil {
		err = s.f.Sync()
		if err != nil {
			err = fmt.Errorf("recorder: fsync %s: %w", s.path, err)
		}
	} else {
		err = fmt.Errorf("recorder: write %d bytes at %d to %s: %w", len(b), s.size, s.path, err)
	}
	if err != nil {
		if terr := s.f.Truncate(s.size); terr != nil {
			return &tornError{err: err, truncErr: terr}
		}
		return err
	}
	s.size += int64(len(b))
	return nil
}

// tornError is a failed write that could not be undone: the segment's end
// is unknown and it must not be written to again.
type tornError struct{ err, truncErr error }

func (e *tornError) Error() string {
	return fmt.Sprintf("%v (and truncating the torn write failed: %v)", e.err, e.truncErr)
}
func (e *tornError) Unwrap() error { return e.err }

// finalise writes the durations, fsyncs, closes and renames name.mp4.part
// to name.mp4. The file is closed whatever happens.
func (s *segment) finalise() error {
	err := patchDurations(s.f, s.df, s.end)
	if err == nil {
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.fs.Rename(s.path, s.final)
	}
	if err == nil {
		err = s.fs.SyncDir(filepath.Dir(s.final))
	}
	if err != nil {
		return fmt.Errorf("recorder: finalise segment %s: %w", s.path, err)
	}
	return nil
}

// abandon closes a segment that cannot be finalised; the next start
// repairs it.
func (s *segment) abandon() { _ = s.f.Close() }

// patchDurations writes the duration (ticks) into the fixed fields of the
// init boxes.
func patchDurations(f File, df durationFields, end int64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(max(end, 0)))
	for _, off := range df {
		if off == 0 {
			continue
		}
		if _, err := f.WriteAt(b[:], off); err != nil {
			return fmt.Errorf("write duration at %d: %w", off, err)
		}
	}
	return nil
}
