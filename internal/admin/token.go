package admin

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/framehub/framehub/internal/rundir"
)

// TokenFileEnv names the environment variable that sets the admin token
// file of the daemons and of framehubctl when no flag does.
const TokenFileEnv = "FRAMEHUB_ADMIN_TOKEN_FILE"

// TokenFileName is the token file's name in the default directory.
const TokenFileName = "admin.token"

// Token lengths accepted in a token file. A daemon writes 64 hex digits
// (256 random bits); an operator may write their own.
const (
	minTokenLen = 32
	maxTokenLen = 512
)

// DefaultTokenFile returns the admin token file used when none is given:
// $FRAMEHUB_ADMIN_TOKEN_FILE, else admin.token in /run/framehub for root
// and in $XDG_RUNTIME_DIR/framehub for other users. Without either the
// error says what to give.
func DefaultTokenFile() (string, error) {
	if p := os.Getenv(TokenFileEnv); p != "" {
		return p, nil
	}
	dir, err := rundir.Default()
	if err != nil {
		return "", fmt.Errorf("admin: no default token file: %w; give -admin-token FILE, or set %s or XDG_RUNTIME_DIR",
			err, TokenFileEnv)
	}
	return filepath.Join(dir, TokenFileName), nil
}

// LoadOrCreateToken returns the admin token of the file at path. A missing
// file is created with mode 0600 holding a new random token (its directory
// is made as rundir.Ensure makes it): the daemons of one uid that share a
// token file share the token, whichever starts first writes it. An
// existing file is used only when it is a regular file of the effective
// uid that nobody else may read or write; otherwise the error says what to
// do.
func LoadOrCreateToken(path string) (string, error) {
	if path == "" {
		return "", errors.New("admin: token file: empty path")
	}
	if err := rundir.Ensure(filepath.Dir(path), -1); err != nil {
		return "", fmt.Errorf("admin: token file %s: %w", path, err)
	}
	// Two tries: a daemon starting at the same time may create it first.
	for range 2 {
		tok, err := readOwnToken(path)
		if !errors.Is(err, fs.ErrNotExist) {
			return tok, err
		}
		tok, err = createToken(path)
		if !errors.Is(err, fs.ErrExist) {
			return tok, err
		}
	}
	return "", fmt.Errorf("admin: token file %s: created and removed by someone else while being read", path)
}

// readOwnToken reads a token file that must belong to the effective uid
// and be private to it.
func readOwnToken(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return "", fmt.Errorf("admin: token file %s is a symbolic link: remove it", path)
		}
		return "", fmt.Errorf("admin: token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("admin: token file: %w", err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("admin: token file %s is not a regular file (%v): remove it", path, fi.Mode().Type())
	case st == nil || int(st.Uid) != os.Geteuid():
		return "", fmt.Errorf("admin: token file %s belongs to uid %d, not to uid %d that runs this daemon: another user may "+
			"have written a token they know; remove it, or give each uid its own -admin-token", path, st.Uid, os.Geteuid())
	case fi.Mode().Perm()&0o077 != 0:
		return "", fmt.Errorf("admin: token file %s has mode %#o, open to other users: chmod 600 %s, or remove it so that a "+
			"new token is made", path, fi.Mode().Perm(), path)
	}
	return parseToken(path, f)
}

// createToken writes a new token to path through a temporary file and a
// hard link, so that nobody ever reads half a token and an existing file
// is never replaced (the link fails with fs.ErrExist).
func createToken(path string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("admin: token: %w", err)
	}
	tok := hex.EncodeToString(b)
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*") // mode 0600
	if err != nil {
		return "", fmt.Errorf("admin: token file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(tok + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("admin: token file %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fs.ErrExist
		}
		return "", fmt.Errorf("admin: token file: %w", err)
	}
	return tok, nil
}

// ReadToken reads the admin token at path for a client such as
// framehubctl. Unlike a daemon it does not require the file to be its own
// (root reads the token of a daemon running as another uid), only to hold
// a token.
func ReadToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	defer f.Close()
	return parseToken(path, f)
}

// parseToken reads one token: a single line of printable ASCII without
// spaces, of 32 to 512 characters.
func parseToken(path string, r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxTokenLen+2))
	if err != nil {
		return "", fmt.Errorf("admin: token file %s: %w", path, err)
	}
	tok := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if len(tok) < minTokenLen || len(tok) > maxTokenLen {
		return "", fmt.Errorf("admin: token file %s: the token has %d characters, want %d to %d on one line", path, len(tok),
			minTokenLen, maxTokenLen)
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] > '~' {
			return "", fmt.Errorf("admin: token file %s: byte %d (%#x) is not printable ASCII", path, i, tok[i])
		}
	}
	return tok, nil
}
