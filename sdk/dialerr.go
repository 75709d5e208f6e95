package sdk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// explainDial adds to err, a failure to connect to the producer's socket
// at addr, what an operator needs to fix it: that no socket is there, that
// nothing listens on it, or which directory or socket refuses this process,
// its owner, group and mode, and the user or group the process lacks.
func explainDial(addr string, err error) error {
	if strings.HasPrefix(addr, "@") {
		return err // abstract sockets have no file, no permissions
	}
	switch {
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		if why := permissionProblem(addr, processIDs()); why != "" {
			return fmt.Errorf("%w: %s", err, why)
		}
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("%w: no socket at %s: is the producer running, and is this its -socket (or FRAMEHUB_SOCKET)?", err, addr)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: nothing listens on %s: the producer is not running (the file is left from one that stopped)", err, addr)
	}
	return err
}

// ids are the user and groups a permission check is made for.
type ids struct {
	uid    int
	groups []int // the effective gid first
}

func processIDs() ids {
	id := ids{uid: os.Geteuid(), groups: []int{os.Getegid()}}
	if gs, err := os.Getgroups(); err == nil {
		for _, g := range gs {
			if !slices.Contains(id.groups, g) {
				id.groups = append(id.groups, g)
			}
		}
	}
	return id
}

// permissionProblem returns which path of the way to the socket at path
// refuses id (a directory it may not search, or the socket it may not
// write to, as connect(2) needs), and what would let it in; "" when it
// finds none (root, or the refusal comes from elsewhere: a security
// module).
func permissionProblem(path string, id ids) string {
	if id.uid == 0 {
		return ""
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	// Every directory from the root down needs search (x), the socket
	// write (w).
	var steps []string
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		steps = append(steps, d)
		if d == "/" {
			break
		}
	}
	slices.Reverse(steps)
	steps = append(steps, abs)
	for i, p := range steps {
		fi, err := os.Stat(p)
		if err != nil {
			return ""
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return ""
		}
		need, what, verb := uint32(1), "directory", "search"
		if i == len(steps)-1 {
			need, what, verb = 2, "socket", "connect to"
		}
		if allowed(fi.Mode(), int(st.Uid), int(st.Gid), id, need) {
			continue
		}
		return refusal(what, verb, p, fi.Mode(), int(st.Uid), int(st.Gid), id, need)
	}
	return ""
}

// allowed reports whether id has the permission bit need (1 x, 2 w, 4 r)
// on a file of mode perm owned by uid and gid: the owner's bits for the
// owner, the group's for its members, the others' for everyone else.
func allowed(perm fs.FileMode, uid, gid int, id ids, need uint32) bool {
	m := uint32(perm.Perm())
	switch {
	case id.uid == uid:
		return m>>6&need != 0
	case slices.Contains(id.groups, gid):
		return m>>3&need != 0
	}
	return m&need != 0
}

// refusal says that id may not verb the file p, and what would let it.
func refusal(what, verb, p string, perm fs.FileMode, uid, gid int, id ids, need uint32) string {
	m := uint32(perm.Perm())
	var fix string
	switch {
	case m>>3&need != 0:
		fix = fmt.Sprintf("add %s to group %s (systemd: SupplementaryGroups=%s)", userName(id.uid), groupName(gid), groupName(gid))
	case m>>6&need != 0:
		fix = fmt.Sprintf("run as %s, or have the producer open its socket to a group (-socket-group)", userName(uid))
	default:
		fix = "its mode lets nobody but root in: have the producer set it (-socket-mode, -socket-group)"
	}
	gnames := make([]string, len(id.groups))
	for i, g := range id.groups {
		gnames[i] = groupName(g)
	}
	return fmt.Sprintf("this process (user %s, groups %s) may not %s the %s %s (owner %s, group %s, mode %04o): %s",
		userName(id.uid), strings.Join(gnames, ","), verb, what, p, userName(uid), groupName(gid), m, fix)
}

// userName is the name of uid, or "uid N" when it has none.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(uid)
}

// groupName is the name of gid, or "gid N" when it has none.
func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return "gid " + strconv.Itoa(gid)
}
