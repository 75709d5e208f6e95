package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Writer stores snapshot files. The store calls it from one goroutine only.
// Tests inject writers that stall or fail.
type Writer interface {
	// Write stores data as the file name (no directory part) so that a
	// reader never sees a partial file, and makes the file's data durable.
	Write(name string, data []byte) error
	// Sync makes the names written so far durable (the directory entries).
	Sync() error
	// Remove deletes the file name (retention). A missing file is not an error.
	Remove(name string) error
}

// FileWriter writes snapshot files into a directory: each file goes to a
// temporary name, is fsynced, closed and renamed into place; Sync fsyncs the
// directory, which makes the renames durable.
type FileWriter struct {
	dir string
	// syncFile and syncDir are the fsyncs; tests count them.
	syncFile func(*os.File) error
	syncDir  func(*os.File) error
}

// NewFileWriter returns a writer into dir, creating it (0755) if needed.
func NewFileWriter(dir string) (*FileWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("snapshot: create directory %q: %w", dir, err)
	}
	sync := (*os.File).Sync
	return &FileWriter{dir: dir, syncFile: sync, syncDir: sync}, nil
}

// Dir returns the directory written to.
func (w *FileWriter) Dir() string { return w.dir }

// tempName is where name is written before its rename: a dot file, so
// listings and retention ignore it, and removed at start if a crash left it.
func tempName(name string) string { return "." + name + ".tmp" }

// Write implements Writer.
func (w *FileWriter) Write(name string, data []byte) (err error) {
	tmp := filepath.Join(w.dir, tempName(name))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("snapshot: create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("snapshot: write %s (%d bytes): %w", tmp, len(data), err)
	}
	if err := w.syncFile(f); err != nil {
		f.Close()
		return fmt.Errorf("snapshot: fsync %s: %w", tmp, err)
	}
	// Close reports delayed write errors on some filesystems (NFS).
	if err := f.Close(); err != nil {
		return fmt.Errorf("snapshot: close %s: %w", tmp, err)
	}
	dst := filepath.Join(w.dir, name)
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("snapshot: rename %s to %s: %w", tmp, dst, err)
	}
	return nil
}

// Sync implements Writer.
func (w *FileWriter) Sync() error {
	d, err := os.Open(w.dir)
	if err != nil {
		return fmt.Errorf("snapshot: open directory %s for fsync: %w", w.dir, err)
	}
	err = w.syncDir(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot: fsync directory %s: %w", w.dir, err)
	}
	return nil
}

// Remove implements Writer.
func (w *FileWriter) Remove(name string) error {
	p := filepath.Join(w.dir, name)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshot: remove %s: %w", p, err)
	}
	return nil
}

// failureReason classifies a storage error for metrics and logs.
func failureReason(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return "enospc"
	case errors.Is(err, syscall.EDQUOT):
		return "edquot"
	case errors.Is(err, syscall.EIO):
		return "eio"
	case errors.Is(err, syscall.EROFS):
		return "erofs"
	case errors.Is(err, fs.ErrPermission):
		return "permission"
	}
	return "other"
}
