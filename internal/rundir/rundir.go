// Package rundir finds and secures the directory that holds framehub's
// sockets and admin token: /run/framehub for root, $XDG_RUNTIME_DIR/framehub
// for other users, and no predictable fallback (a directory under /tmp can
// be created first by another local user, who then owns what is put in it).
//
// Ensure creates such a directory, or accepts an existing one only when no
// other user can change what it holds: it must be owned by this process's
// effective uid and writable by nobody else, and every directory above it
// must be owned by root or this uid and writable by nobody else unless it is
// sticky (like /tmp, where others cannot rename or remove our entries).
package rundir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNoDefault means there is no default directory: the process is not
// root and XDG_RUNTIME_DIR is not set (or not absolute). Default's error
// matches it with errors.Is and says which.
var ErrNoDefault = errors.New("no default directory")

// noDefaultError is Default's error: why there is no default.
type noDefaultError struct{ why string }

func (e *noDefaultError) Error() string        { return e.why }
func (e *noDefaultError) Is(target error) bool { return target == ErrNoDefault }

// ErrUnsafe is wrapped by Ensure's errors about a directory that another
// user could change.
var ErrUnsafe = errors.New("unsafe directory")

// Name is the directory's name under $XDG_RUNTIME_DIR and /run.
const Name = "framehub"

// Default returns the default directory of the calling process:
// /run/framehub when its effective uid is 0, else
// $XDG_RUNTIME_DIR/framehub. Without XDG_RUNTIME_DIR the error wraps
// ErrNoDefault and names the uid.
func Default() (string, error) {
	return defaultFor(os.Geteuid(), os.Getenv("XDG_RUNTIME_DIR"))
}

func defaultFor(euid int, xdg string) (string, error) {
	if euid == 0 {
		return filepath.Join("/run", Name), nil
	}
	if xdg != "" {
		if !filepath.IsAbs(xdg) {
			return "", &noDefaultError{fmt.Sprintf("XDG_RUNTIME_DIR=%q is not an absolute path", xdg)}
		}
		return filepath.Join(xdg, Name), nil
	}
	return "", &noDefaultError{fmt.Sprintf("XDG_RUNTIME_DIR is not set and uid %d is not root", euid)}
}

// Ensure makes dir ready to hold sockets and secrets of this process's
// user. A missing dir is created (missing parents with mode 0755) with mode
// 0700, or 0750 and group gid when gid ≥ 0, so that members of that group
// can reach a socket inside. An existing dir is used as it is, with its own
// mode and group, but only when it is owned by the effective uid and not
// writable by group or others; otherwise the error wraps ErrUnsafe and says
// what to do. Every directory above dir is checked as the package doc says.
func Ensure(dir string, gid int) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	created, err := create(abs, gid)
	if err != nil {
		return err
	}
	if err := Check(abs); err != nil {
		if created {
			// Ours, but under an unsafe parent: do not leave it behind.
			_ = os.Remove(abs)
		}
		return err
	}
	return nil
}

// create makes dir unless it exists, reporting whether it did.
func create(dir string, gid int) (bool, error) {
	if _, err := os.Lstat(dir); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return false, fmt.Errorf("directory %s: create its parent: %w", dir, err)
	}
	mode := os.FileMode(0o700)
	if gid >= 0 {
		mode = 0o750
	}
	if err := os.Mkdir(dir, mode); errors.Is(err, fs.ErrExist) {
		return false, nil // someone else was quicker: Check judges it
	} else if err != nil {
		return false, fmt.Errorf("directory %s: create: %w", dir, err)
	}
	fail := func(err error) (bool, error) {
		_ = os.Remove(dir)
		return false, err
	}
	if gid >= 0 {
		if err := os.Chown(dir, -1, gid); err != nil {
			return fail(fmt.Errorf("directory %s: give it group %d: %w", dir, gid, err))
		}
	}
	// Mkdir's mode went through the umask, and chown may clear bits.
	if err := os.Chmod(dir, mode); err != nil {
		return fail(fmt.Errorf("directory %s: chmod %#o: %w", dir, mode, err))
	}
	return true, nil
}

// Check reports whether dir is safe as Ensure requires, without creating
// anything. Its errors wrap ErrUnsafe, or the error of reading the
// directory.
func Check(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	euid := os.Geteuid()
	fi, err := os.Lstat(abs)
	if err != nil {
		return fmt.Errorf("directory %s: %w", abs, err)
	}
	if fi.Mode().Type() != fs.ModeDir {
		return fmt.Errorf("%w: %s is not a directory (%v): remove it or choose another path", ErrUnsafe, abs, fi.Mode().Type())
	}
	uid := owner(fi)
	if uid != euid {
		return fmt.Errorf("%w: %s belongs to uid %d, not to uid %d that runs this: another user may have created it to "+
			"take over its sockets; remove it (or chown it, if it is yours) or choose another path", ErrUnsafe, abs, uid, euid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: %s has mode %#o, writable by other users, who could replace its sockets: chmod go-w %s, "+
			"or remove it and let framehub create it", ErrUnsafe, abs, fi.Mode().Perm(), abs)
	}
	return checkAncestors(abs, euid)
}

// checkAncestors checks every directory above dir, and every symbolic link
// on the way (which must belong to root or euid: whoever owns a link can
// point it elsewhere).
func checkAncestors(dir string, euid int) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("directory %s: %w", p, err)
		}
		uid := owner(fi)
		if fi.Mode().Type() == fs.ModeSymlink {
			if uid != 0 && uid != euid {
				return fmt.Errorf("%w: %s, above %s, is a symbolic link of uid %d, who can point it elsewhere: use a path "+
					"without it", ErrUnsafe, p, dir, uid)
			}
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("directory %s: %w", p, err)
			}
			if err := checkDirAbove(target, dir, euid); err != nil {
				return err
			}
			if err := checkAncestors(target, euid); err != nil {
				return err
			}
		} else if err := checkDirAbove(p, dir, euid); err != nil {
			return err
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// checkDirAbove checks p, a directory above dir: only root or euid may
// change its entries.
func checkDirAbove(p, dir string, euid int) error {
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("directory %s: %w", p, err)
	}
	uid := owner(fi)
	if uid != 0 && uid != euid {
		return fmt.Errorf("%w: %s, above %s, belongs to uid %d, who could replace what it holds: use a directory "+
			"of your own or of root", ErrUnsafe, p, dir, uid)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("%w: %s, above %s, has mode %#o: other users can rename what it holds: chmod go-w %s "+
			"or use another directory", ErrUnsafe, p, dir, fi.Mode().Perm(), p)
	}
	return nil
}

// owner returns a file's uid (-1 when unknown).
func owner(fi fs.FileInfo) int {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1
	}
	return int(st.Uid)
}
