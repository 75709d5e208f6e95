package recorder

import (
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sort"
	"time"
)

// closedFile is a closed segment in the retention index.
type closedFile struct {
	path  string
	size  int64
	mtime time.Time
}

// index is the closed segments under Dir, oldest (by name, that is by start
// time) first. It is built once at start (recover.go) and kept by the
// writer, so retention never walks the tree: at 60 s segments a month is
// 43,200 files.
type index struct {
	files []closedFile
	bytes int64
}

func (x *index) add(f closedFile) {
	i := sort.Search(len(x.files), func(i int) bool { return filepath.Base(x.files[i].path) > filepath.Base(f.path) })
	x.files = append(x.files, closedFile{})
	copy(x.files[i+1:], x.files[i:])
	x.files[i] = f
	x.bytes += f.size
}

func (x *index) removeOldest() closedFile {
	f := x.files[0]
	x.files = x.files[1:]
	x.bytes -= f.size
	return f
}

// retention deletes closed segments, oldest first, beyond the limits.
type retention struct {
	fs        FS
	root      string
	keepBytes int64
	keepAge   time.Duration
	log       *slog.Logger
	m         *metrics
	idx       index
}

// run applies KeepBytes and KeepAge. open is the size of the segments not
// closed yet (being written, or waiting for resume): they count against
// KeepBytes but are never deleted.
func (r *retention) run(now time.Time, open int64) {
	for len(r.idx.files) > 0 {
		oldest := r.idx.files[0]
		var reason string
		switch {
		case r.keepBytes > 0 && r.idx.bytes+open > r.keepBytes:
			reason = "bytes"
		case r.keepAge > 0 && now.Sub(oldest.mtime) > r.keepAge:
			reason = "age"
		default:
			return
		}
		r.delete(reason)
	}
}

// free deletes the oldest closed segments until need bytes are freed (the
// disk is full: recording matters more than the oldest footage). It
// reports whether it deleted anything.
func (r *retention) free(need int64) bool {
	freed := int64(0)
	for freed < need && len(r.idx.files) > 0 {
		freed += r.delete("enospc")
	}
	return freed > 0
}

// delete removes the oldest closed segment and returns its size.
func (r *retention) delete(reason string) int64 {
	f := r.idx.removeOldest()
	err := r.fs.Remove(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0 // removed by someone else
	case err != nil:
		// Not deletable (permissions, EIO): forget it rather than retry it
		// forever; it no longer counts.
		r.log.Error("retention: cannot delete segment", "file", f.path, "err", err)
		return 0
	}
	r.m.deleted.WithLabelValues(reason).Inc()
	r.m.deletedBytes.Add(float64(f.size))
	r.log.Info("retention: deleted segment", "file", f.path, "bytes", f.size, "reason", reason)
	dir := filepath.Dir(f.path)
	if ents, err := r.fs.ReadDir(dir); err == nil && len(ents) == 0 && dir != r.root {
		_ = r.fs.Remove(dir) // an emptied day directory
	}
	return f.size
}
