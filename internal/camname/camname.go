// Package camname is the rule for camera names, which the group config
// gives and every daemon uses as a path segment: the streamer's
// rtsp://host:8554/<name>, the browser view's /<name>/…, the directories
// of a camera's recordings and snapshots, process names and metric
// labels. One rule, checked where a name is read, keeps a name that works
// in one place from breaking another.
package camname

import (
	"fmt"
	"strings"
)

// MaxLen is the longest camera name, in bytes.
const MaxLen = 32

// Default is the name of the camera of a group that names none: the
// streamer's path /cam of old.
const Default = "cam"

// Check reports whether name is a valid camera name: 1 to MaxLen
// characters of a–z, 0–9, '_' and '-' (valid as a URL path segment and a
// file name without escaping, the same on every file system), and not one
// of the browser view's own paths (list, get, api, static, healthz,
// metrics). Its error names the name and the rule it breaks.
func Check(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("camera name must not be empty")
	case len(name) > MaxLen:
		return fmt.Errorf("camera name %q is %d bytes long: at most %d", name, len(name), MaxLen)
	}
	if reserved(name) {
		return fmt.Errorf("camera name %q is reserved: the browser view serves its own pages at /%s (reserved: list, get, api, static, healthz, metrics)", name, name)
	}
	if i := strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}); i >= 0 {
		return fmt.Errorf("camera name %q has %q at byte %d: use only a-z, 0-9, '_' and '-' (it is a URL path segment and a directory name)",
			name, []rune(name[i:])[0], i)
	}
	return nil
}

// reserved reports whether name is a path of the browser view
// (consumers/web) that a camera at /<name>/ would shadow.
func reserved(name string) bool {
	switch name {
	case "list", "get", "api", "static", "healthz", "metrics":
		return true
	}
	return false
}
