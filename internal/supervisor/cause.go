package supervisor

import (
	"strings"
)

// flagErrors are how Go's flag package starts the line it prints for a bad
// command line, before the usage text (which can be 60 lines long).
var flagErrors = []string{
	"flag provided but not defined: ", "flag needs an argument: ", "invalid value ", "invalid boolean value ",
	"invalid boolean flag ", "bad flag syntax: ",
}

// exitCause picks, from the lines a process wrote during a run that
// failed, the one that says why: the first line of a Go panic or fatal
// error; else a bad flag's message (Go programs print the usage after
// it); else the last line logged at level ERROR (log/slog's text or JSON,
// without its time); else the last line that is not a log line below
// ERROR (a program's own "name: message" before exit status 2); else the
// last WARN line. "" when none says anything.
func exitCause(lines []string) string {
	for _, l := range lines {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return strings.TrimSpace(l)
		}
	}
	for _, l := range lines {
		for _, p := range flagErrors {
			if strings.HasPrefix(l, p) {
				return strings.TrimSpace(l)
			}
		}
	}
	lastPlain, lastWarn := "", ""
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		switch level(l) {
		case "ERROR":
			return withoutTime(l)
		case "WARN":
			if lastWarn == "" {
				lastWarn = withoutTime(l)
			}
		case "":
			if lastPlain == "" && l != "" {
				lastPlain = l
			}
		}
	}
	if lastPlain != "" {
		return lastPlain
	}
	return lastWarn
}

// level returns the level of a log/slog line (text "level=ERROR" or JSON
// "level":"ERROR"), "" for a line that is not one.
func level(l string) string {
	for _, key := range []string{"level=", `"level":"`} {
		i := strings.Index(l, key)
		if i < 0 || (key == "level=" && !strings.HasPrefix(l, "time=") && i != 0) {
			continue
		}
		v := l[i+len(key):]
		if j := strings.IndexAny(v, ` "`); j >= 0 {
			v = v[:j]
		}
		if v == "" {
			continue
		}
		v = strings.ToUpper(v)
		switch {
		case strings.HasPrefix(v, "ERROR"):
			return "ERROR"
		case strings.HasPrefix(v, "WARN"):
			return "WARN"
		}
		return v
	}
	return ""
}

// withoutTime drops the leading time=… of a log/slog text line.
func withoutTime(l string) string {
	if rest, ok := strings.CutPrefix(l, "time="); ok {
		if i := strings.IndexByte(rest, ' '); i >= 0 {
			return rest[i+1:]
		}
	}
	return l
}
