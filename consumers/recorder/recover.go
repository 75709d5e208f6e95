package recorder

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// What the recorder finds in Dir when it starts, and what it does about it:
//
//   - Closed segments (*.mp4) form the retention index.
//   - A segment left by a crash (*.mp4.part) is read box by box; a torn
//     last fragment (a write the crash interrupted) is cut off, so every
//     complete fragment plays. A part without a complete moov (the crash
//     came while creating it) or without any fragment holds no video and is
//     removed. Parts other than the newest, or recorded before a reboot, are
//     finalised at once (durations written, renamed to *.mp4); the newest
//     may be continued (writer.resolveResume).
//   - The resume point is the last fragment of the newest segment: its
//     fragment info box says which producer frame it ended with and when
//     that frame was captured. The data and the resume point are one write,
//     made durable by one fsync, so they cannot disagree: the recorder dials
//     with ReplayFrom = that capture time and the producer replays exactly
//     the frames after it.

// resumePoint is where the last recording ended.
type resumePoint struct {
	found    bool
	sameBoot bool   // recorded since the machine last booted: capture times compare
	mono     int64  // capture time (CLOCK_MONOTONIC) of the last durable access unit
	seq      uint64 // its producer sequence number
}

// recovery is the outcome of recoverDir.
type recovery struct {
	closed []closedFile // oldest first
	part   *recoveredPart
	resume resumePoint
}

// segFile is a segment file found in Dir.
type segFile struct {
	path string
	base string // file name without .mp4[.part]
	part bool
}

// recoverDir scans root (creating it when missing), repairs what a crash
// left and finds the resume point. With resumable false (event mode, where
// a recording is never continued) every part is finalised.
func recoverDir(fsys FS, root string, boot [16]byte, resumable bool, log *slog.Logger, m *metrics) (recovery, error) {
	var rec recovery
	if err := fsys.MkdirAll(root); err != nil {
		return rec, fmt.Errorf("recorder: create directory %s: %w", root, err)
	}
	files, err := listSegments(fsys, root)
	if err != nil {
		return rec, err
	}
	var kept []segFile
	for i, f := range files {
		if !f.part {
			kept = append(kept, f)
			continue
		}
		seg, err := repairPart(fsys, f.path, log)
		if err != nil {
			return rec, err
		}
		if seg == nil {
			continue // removed: held no video
		}
		m.recovered.WithLabelValues("repaired").Inc()
		newest := i == len(files)-1
		if resumable && newest && seg.HasInfo && seg.Info.BootID == boot && boot != ([16]byte{}) {
			rec.part = &recoveredPart{path: f.path, seg: seg}
			kept = append(kept, f)
			continue
		}
		if err := finaliseFile(fsys, f.path, seg); err != nil {
			return rec, err
		}
		log.Info("segment left by a crash finalised", "file", strings.TrimSuffix(f.path, partSuffix))
		f.path, f.part = strings.TrimSuffix(f.path, partSuffix), false
		kept = append(kept, f)
	}
	for _, f := range kept {
		if f.part {
			continue
		}
		fi, err := fsys.Stat(f.path)
		if err != nil {
			return rec, fmt.Errorf("recorder: stat %s: %w", f.path, err)
		}
		rec.closed = append(rec.closed, closedFile{path: f.path, size: fi.Size(), mtime: fi.ModTime()})
	}
	// The resume point: the last fragment of the newest segment that has one.
	for i, tries := len(kept)-1, 0; i >= 0 && tries < 3; i, tries = i-1, tries+1 {
		var seg *Segment
		if rec.part != nil && kept[i].path == rec.part.path {
			seg = rec.part.seg
		} else if seg, err = readSegmentFile(fsys, kept[i].path); err != nil {
			log.Warn("unreadable segment", "file", kept[i].path, "err", err)
			continue
		}
		if n := len(seg.Fragments); n > 0 && seg.Fragments[n-1].HasInfo && seg.HasInfo {
			last := seg.Fragments[n-1].Info
			rec.resume = resumePoint{found: true, sameBoot: seg.Info.BootID == boot && boot != ([16]byte{}), mono: last.LastMono, seq: last.LastSeq()}
			break
		}
	}
	return rec, nil
}

// listSegments returns the segment files under root/YYYY-MM-DD/, by name
// (start time).
func listSegments(fsys FS, root string) ([]segFile, error) {
	days, err := fsys.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("recorder: read directory %s: %w", root, err)
	}
	var files []segFile
	for _, d := range days {
		if !d.IsDir() {
			continue
		}
		if _, err := time.Parse(dayLayout, d.Name()); err != nil {
			continue
		}
		dir := filepath.Join(root, d.Name())
		ents, err := fsys.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("recorder: read directory %s: %w", dir, err)
		}
		for _, e := range ents {
			name := e.Name()
			f := segFile{path: filepath.Join(dir, name)}
			switch {
			case strings.HasSuffix(name, segExt+partSuffix):
				f.base, f.part = strings.TrimSuffix(name, segExt+partSuffix), true
			case strings.HasSuffix(name, segExt):
				f.base = strings.TrimSuffix(name, segExt)
			default:
				continue
			}
			if _, ok := SegmentStart(f.base); ok && e.Type().IsRegular() {
				files = append(files, f)
			}
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].base < files[j].base })
	return files, nil
}

// repairPart cuts a torn last fragment off a segment left by a crash. It
// removes the file and returns nil when it holds no video.
func repairPart(fsys FS, path string, log *slog.Logger) (*Segment, error) {
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("recorder: open segment %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("recorder: stat segment %s: %w", path, err)
	}
	seg, err := ReadSegment(f, fi.Size())
	if err != nil || len(seg.Fragments) == 0 {
		log.Warn("segment left by a crash holds no video: removed", "file", path, "bytes", fi.Size(), "err", err)
		if err := fsys.Remove(path); err != nil {
			return nil, fmt.Errorf("recorder: remove %s: %w", path, err)
		}
		return nil, nil
	}
	if seg.ValidEnd < fi.Size() {
		if err := f.Truncate(seg.ValidEnd); err != nil {
			return nil, fmt.Errorf("recorder: truncate %s to %d: %w", path, seg.ValidEnd, err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("recorder: fsync %s: %w", path, err)
		}
		log.Warn("segment left by a crash: torn last fragment cut off", "file", path, "bytes_cut", fi.Size()-seg.ValidEnd,
			"fragments_kept", len(seg.Fragments))
		seg.Size = seg.ValidEnd
	}
	return seg, nil
}

// readSegmentFile reads a segment with ReadSegment.
func readSegmentFile(fsys FS, path string) (*Segment, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return ReadSegment(f, fi.Size())
}

// ReadSegmentFile reads the segment file at path (see ReadSegment).
func ReadSegmentFile(path string) (*Segment, error) {
	seg, err := readSegmentFile(OSFS{}, path)
	if err != nil {
		return nil, fmt.Errorf("recorder: read segment %s: %w", path, err)
	}
	return seg, nil
}

// bootID reads the kernel's boot id: capture times (CLOCK_MONOTONIC) of
// two recordings compare only when they were made in the same boot. It is
// zero when unknown.
func bootID() [16]byte {
	var id [16]byte
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return id
	}
	h, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(string(b)), "-", ""))
	if err != nil || len(h) != 16 {
		return id
	}
	copy(id[:], h)
	return id
}
