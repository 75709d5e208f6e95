package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loopFS is an ext4 filesystem in a file, mounted where the recorder
// writes, so that the suite can fill it (a full disk) and freeze it (a
// storage stall) as a real card or disk would.
type loopFS struct {
	dir string
}

// mountLoopFS makes and mounts a size-byte ext4 filesystem under a test
// directory. It returns nil and the reason when this machine cannot (not
// root, no loop device, no mkfs.ext4); the caller runs without the storage
// faults and says so. The filesystem is unmounted when the test ends.
func mountLoopFS(t *testing.T, size int64) (*loopFS, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, "mounting a loop filesystem needs root"
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return nil, fmt.Sprintf("no loop devices: %v", err)
	}
	for _, tool := range []string{"mkfs.ext4", "fsfreeze", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Sprintf("%s not installed (e2fsprogs, util-linux)", tool)
		}
	}
	base := t.TempDir()
	img, dir := filepath.Join(base, "disk.img"), filepath.Join(base, "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err.Error()
	}
	f, err := os.Create(img)
	if err != nil {
		return nil, err.Error()
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Sprintf("create %s: %v", img, err)
	}
	// -m 0: no blocks reserved for root, so that the recorder (root here)
	// sees ENOSPC when the disk is full.
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", img).CombinedOutput(); err != nil {
		return nil, fmt.Sprintf("mkfs.ext4 %s: %v: %s", img, err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		return nil, fmt.Sprintf("mount -o loop %s: %v: %s", img, err, strings.TrimSpace(string(out)))
	}
	l := &loopFS{dir: dir}
	t.Cleanup(func() {
		_ = l.thaw()
		_ = os.Remove(l.fillerPath())
		// The group's processes die asynchronously: retry while busy.
		for i := 0; ; i++ {
			out, err := exec.Command("umount", dir).CombinedOutput()
			if err == nil {
				return
			}
			if i == 50 {
				t.Logf("umount %s: %v: %s; detaching it lazily", dir, err, out)
				_ = exec.Command("umount", "-l", dir).Run()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return l, ""
}

func (l *loopFS) fillerPath() string { return filepath.Join(l.dir, "chaos-filler") }

// free is the space left to unprivileged writers, in bytes.
func (l *loopFS) free() (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(l.dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", l.dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// fill allocates all but leave bytes of the free space to a filler file.
func (l *loopFS) fill(leave int64) error {
	free, err := l.free()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(l.fillerPath(), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if n := free - leave; n > 0 {
		err = unix.Fallocate(int(f.Fd()), 0, 0, n)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fill %s: %w", l.fillerPath(), err)
	}
	return nil
}

// unfill removes the filler file.
func (l *loopFS) unfill() error { return os.Remove(l.fillerPath()) }

// freeze blocks every write to the filesystem until thaw (FIFREEZE): what
// a stalled SD card or NFS server looks like to the writer.
func (l *loopFS) freeze() error {
	if out, err := exec.Command("fsfreeze", "-f", l.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("fsfreeze -f %s: %w: %s", l.dir, err, out)
	}
	return nil
}

func (l *loopFS) thaw() error {
	if out, err := exec.Command("fsfreeze", "-u", l.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("fsfreeze -u %s: %w: %s", l.dir, err, out)
	}
	return nil
}
