package admin

import (
	"crypto/subtle"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Access is how a daemon's admin endpoints are protected: its flags
// (RegisterFlags) and config keys are -admin-token and -admin-public.
type Access struct {
	// TokenFile holds the admin token (see LoadOrCreateToken); ""
	// means DefaultTokenFile.
	TokenFile string `yaml:"admin-token"`
	// Public opens the GET endpoints that name processes, users and log
	// lines to callers without the token.
	Public bool `yaml:"admin-public"`
}

// RegisterFlags defines -admin-token and -admin-public on fs.
func (a *Access) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.TokenFile, "admin-token", "", "admin token file: requests other than GET /metrics and /healthz must send "+
		"'Authorization: Bearer <token>' (framehubctl reads the file); created with a random token, mode 0600, when missing "+
		"(default $"+TokenFileEnv+", else /run/framehub/"+TokenFileName+" for root, $XDG_RUNTIME_DIR/framehub/"+TokenFileName+" for others)")
	fs.BoolVar(&a.Public, "admin-public", false, "let callers without the admin token read the GET endpoints that name processes, "+
		"users and log lines (state-changing requests always need the token)")
}

// Guard checks every request to a daemon's admin endpoints before its
// handler sees it:
//
//   - Host must name the configured address, localhost or an IP address
//     (a page that rebinds its own domain name to 127.0.0.1 sends its name)
//     on a TCP listener; Unix sockets, which no browser reaches, skip this;
//   - a cross-origin browser request (an Origin other than the Host, or
//     Sec-Fetch-Site other than same-origin or none) is refused;
//   - GET and HEAD of /metrics and /healthz are open;
//   - other GET and HEAD requests need the token unless Access.Public;
//   - every other request needs the token.
//
// A refused request gets 403 (Host, Origin) or 401 (no or wrong token)
// and a JSON body {"error", "reason"} that says what was wrong.
type Guard struct {
	token     string // "" only for a HostGuard
	tokenFile string
	public    bool
	host      string // the listen address's host, lower case; "" when unspecified
	unix      bool
}

// NewGuard returns the guard of an admin endpoint listening on addr
// ("host:port" or "unix:/path"), loading (or creating) the token file of
// a.
func NewGuard(addr string, a Access) (*Guard, error) {
	path := a.TokenFile
	if path == "" {
		var err error
		if path, err = DefaultTokenFile(); err != nil {
			return nil, err
		}
	}
	tok, err := LoadOrCreateToken(path)
	if err != nil {
		return nil, err
	}
	g := HostGuard(addr)
	g.token, g.tokenFile, g.public = tok, path, a.Public
	return g, nil
}

// HostGuard returns the guard of an admin endpoint that serves only the
// open endpoints (/metrics, /healthz): it checks Host and Origin and
// answers 404 to anything else. It needs no token.
func HostGuard(addr string) *Guard {
	g := &Guard{}
	if _, ok := strings.CutPrefix(addr, "unix:"); ok {
		g.unix = true
		return g
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && ip.IsUnspecified() {
		host = ""
	}
	g.host = strings.ToLower(strings.Trim(host, "[]"))
	return g
}

// TokenFile is the token file the guard checks tokens against ("" for a
// HostGuard).
func (g *Guard) TokenFile() string { return g.tokenFile }

// Wrap returns h behind the guard.
func (g *Guard) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code, short, reason := g.check(r); code != 0 {
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="framehub"`)
			}
			refuse(w, code, short, reason)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// WrapView returns h behind the checks that protect a daemon's viewing
// endpoints (framehub-web's live view, snapshots and recordings), which
// need no token: Host must name this daemon (DNS rebinding), and a request
// other than GET or HEAD (a WebRTC offer) must not come from another site.
// Cross-site GETs pass, so that <img> and <video> tags of other pages can
// show a camera; the browser does not let those pages read the bytes.
// State-changing endpoints go through Wrap instead.
func (g *Guard) WrapView(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, short, reason := g.checkHost(r)
		if code == 0 && r.Method != http.MethodGet && r.Method != http.MethodHead {
			code, short, reason = checkOrigin(r)
		}
		if code != 0 {
			refuse(w, code, short, reason)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// refuse answers a request the guard turned away: code, and a JSON body
// with the short error and the reason.
func refuse(w http.ResponseWriter, code int, short, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": short, "reason": reason})
}

// checkHost is check's Host rule.
func (g *Guard) checkHost(r *http.Request) (int, string, string) {
	if !g.unix && !g.hostAllowed(r.Host) {
		return http.StatusForbidden, "forbidden host", fmt.Sprintf("Host %q is not this daemon's address, localhost or an IP "+
			"address (a web page reaching the admin endpoints through DNS rebinding?)", r.Host)
	}
	return 0, "", ""
}

// checkOrigin is check's cross-origin rule.
func checkOrigin(r *http.Request) (int, string, string) {
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
		return http.StatusForbidden, "cross-origin request", fmt.Sprintf("Origin %q is not this daemon's origin: requests "+
			"from web pages of other sites are refused", o)
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return http.StatusForbidden, "cross-origin request", fmt.Sprintf("Sec-Fetch-Site %q: requests from web pages of "+
			"other sites are refused", s)
	}
	return 0, "", ""
}

// check returns 0 for a request to pass, else the status code, a short
// error and its reason.
func (g *Guard) check(r *http.Request) (int, string, string) {
	if code, short, reason := g.checkHost(r); code != 0 {
		return code, short, reason
	}
	if code, short, reason := checkOrigin(r); code != 0 {
		return code, short, reason
	}
	safe := r.Method == http.MethodGet || r.Method == http.MethodHead
	if safe && (r.URL.Path == "/metrics" || r.URL.Path == "/healthz") {
		return 0, "", ""
	}
	if g.token == "" {
		return http.StatusNotFound, "not found", fmt.Sprintf("%s %s: this daemon serves only GET /metrics and /healthz",
			r.Method, r.URL.Path)
	}
	if safe && g.public {
		return 0, "", ""
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		reason := fmt.Sprintf("%s %s needs the admin token: send 'Authorization: Bearer <token>' with the token of %s "+
			"(framehubctl reads it)", r.Method, r.URL.Path, g.tokenFile)
		if safe {
			reason += "; -admin-public opens GET endpoints to everyone"
		}
		return http.StatusUnauthorized, "authentication required", reason
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(g.token)) != 1 {
		return http.StatusUnauthorized, "wrong token", fmt.Sprintf("the bearer token is not the one in %s", g.tokenFile)
	}
	return 0, "", ""
}

// hostAllowed reports whether a Host header names this daemon: its
// configured host, localhost or an IP address. DNS rebinding needs a name
// the attacker controls, so IP addresses are safe; empty is an HTTP/1.0
// client, not a browser.
func (g *Guard) hostAllowed(hostport string) bool {
	if hostport == "" {
		return true
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "" {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return host == "localhost" || (g.host != "" && host == strings.TrimSuffix(g.host, "."))
}

// sameOrigin reports whether an Origin header is the origin of Host
// (scheme http or https, the same host and port).
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	return strings.EqualFold(u.Host, host)
}
