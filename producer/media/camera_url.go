package media

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// An rtsp:// source's URL carries the camera's credentials. They go to the
// camera (gortsplib answers its basic or digest challenge with them) and
// nowhere else: every log line, error, metric and description names the
// camera by redactURL, and errors that could quote what the camera or the
// network said are scrubbed of them (scrubber).

// redacted replaces a secret in what framehub shows.
const redacted = "***"

// secretQueryKeys are query parameters some cameras take credentials in
// (rtsp://host/stream?user=admin&password=...): their values are redacted
// too.
var secretQueryKeys = []string{"user", "username", "pass", "passwd", "password", "pwd", "token", "auth", "key", "secret"}

// parseCameraURL checks an rtsp:// source: rtsp://[user[:pass]@]host[:port][/path][?query].
func parseCameraURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url's errors quote the whole URL: say what is wrong without it.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	switch {
	case !strings.EqualFold(u.Scheme, "rtsp"):
		return nil, fmt.Errorf("scheme %q: want rtsp://[user:pass@]host[:port]/path (rtsps is not supported)", u.Scheme)
	case u.Hostname() == "":
		return nil, errors.New("no host: want rtsp://[user:pass@]host[:port]/path")
	case u.Fragment != "":
		return nil, errors.New("a #fragment has no meaning in an RTSP URL")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %q: want 1..65535", p)
		}
	}
	if u.User != nil && u.User.Username() == "" {
		return nil, errors.New("credentials without a user name: want rtsp://user:pass@host/path")
	}
	u.Scheme = "rtsp"
	return u, nil
}

// redactURL is u as framehub shows it: credentials replaced by ***, in the
// user info and in the query parameters that carry them.
func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(redacted)
	}
	if c.RawQuery != "" {
		q := c.Query()
		for k := range q {
			for _, s := range secretQueryKeys {
				if strings.EqualFold(k, s) {
					q[k] = []string{redacted}
				}
			}
		}
		c.RawQuery = q.Encode()
	}
	// url escapes the * of the user info; *** is what people read.
	return strings.Replace(c.String(), "%2A%2A%2A@", redacted+"@", 1)
}

// redactSource shows a Source that may not parse: for an rtsp:// URL, what
// lies between the scheme and the last @ before the path is hidden.
func redactSource(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	end := len(rest)
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		end = j
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		return s[:i+3] + redacted + rest[at:]
	}
	if u, err := url.Parse(s); err == nil && u.RawQuery != "" {
		return redactURL(u)
	}
	return s
}

// scrubber removes a camera's credentials from text that may quote them (an
// error from the network or the camera).
type scrubber struct {
	secrets []string // longest first
}

// newScrubber scrubs the credentials of u, parsed from raw (whose user
// info may be escaped differently from u's).
func newScrubber(u *url.URL, raw string) scrubber {
	var sc scrubber
	add := func(s string) {
		if len(s) >= 3 { // shorter ones would also hide innocent text, and are no secret
			sc.secrets = append(sc.secrets, s)
		}
	}
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			rest = rest[:j]
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			userinfo := rest[:at]
			add(userinfo)
			if k := strings.Index(userinfo, ":"); k >= 0 {
				add(userinfo[k+1:])
			}
		}
	}
	if u.User != nil {
		add(u.User.String()) // user:pass as escaped in the URL
		if p, ok := u.User.Password(); ok {
			add(p)
			add(url.QueryEscape(p))
			add(url.PathEscape(p))
		}
	}
	q := u.Query()
	for k, vs := range q {
		for _, s := range secretQueryKeys {
			if strings.EqualFold(k, s) {
				for _, v := range vs {
					add(v)
					add(url.QueryEscape(v))
				}
			}
		}
	}
	// Longest first, so that user:pass goes before pass alone.
	for i := 1; i < len(sc.secrets); i++ {
		for j := i; j > 0 && len(sc.secrets[j]) > len(sc.secrets[j-1]); j-- {
			sc.secrets[j], sc.secrets[j-1] = sc.secrets[j-1], sc.secrets[j]
		}
	}
	return sc
}

// scrub returns s without the secrets.
func (sc scrubber) scrub(s string) string {
	for _, x := range sc.secrets {
		s = strings.ReplaceAll(s, x, redacted)
	}
	return s
}

// err returns err's message scrubbed, as an error; nil stays nil. The
// original error is not wrapped: its text is what must not travel.
func (sc scrubber) err(err error) error {
	if err == nil {
		return nil
	}
	if msg := err.Error(); sc.scrub(msg) != msg {
		return errors.New(sc.scrub(msg))
	}
	return err
}
