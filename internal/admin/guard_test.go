package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// testGuard returns a guard of addr with a token file in a fresh
// directory, and the token.
func testGuard(t testing.TB, addr string, public bool) (*Guard, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.token")
	g, err := NewGuard(addr, Access{TokenFile: path, Public: public})
	require.NoError(t, err)
	tok, err := ReadToken(path)
	require.NoError(t, err)
	return g, tok
}

// req describes one request to a guarded handler.
type req struct {
	method, path, host, origin, site, auth string
}

func (q req) do(g *Guard) (*httptest.ResponseRecorder, bool) {
	reached := false
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
		w.WriteHeader(http.StatusOK)
	}))
	r := &http.Request{Method: q.method, URL: &url.URL{Path: q.path}, Host: q.host, Header: http.Header{}, Proto: "HTTP/1.1",
		ProtoMajor: 1, ProtoMinor: 1}
	for k, v := range map[string]string{"Origin": q.origin, "Sec-Fetch-Site": q.site, "Authorization": q.auth} {
		if v != "" {
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w, reached
}

func TestGuard(t *testing.T) {
	g, tok := testGuard(t, "127.0.0.1:7704", false)
	bearer := "Bearer " + tok
	const host = "127.0.0.1:7704"
	cases := []struct {
		name string
		req
		code int
	}{
		{"metrics open", req{"GET", "/metrics", host, "", "", ""}, 200},
		{"healthz open", req{"HEAD", "/healthz", "localhost:7704", "", "", ""}, 200},
		{"metrics by POST is not open", req{"POST", "/metrics", host, "", "", ""}, 401},
		{"GET naming pids hidden", req{"GET", "/consumers", host, "", "", ""}, 401},
		{"GET with token", req{"GET", "/consumers", host, "", "", bearer}, 200},
		{"POST without token", req{"POST", "/snapshot", host, "", "", ""}, 401},
		{"POST with wrong token", req{"POST", "/snapshot", host, "", "", "Bearer " + strings.Repeat("0", 64)}, 401},
		{"POST with token in another scheme", req{"POST", "/snapshot", host, "", "", "Basic " + tok}, 401},
		{"POST with token", req{"POST", "/snapshot", host, "", "", bearer}, 200},
		{"POST same origin", req{"POST", "/snapshot", host, "http://127.0.0.1:7704", "same-origin", bearer}, 200},
		{"cross-site form POST", req{"POST", "/snapshot", host, "http://evil.example", "cross-site", ""}, 403},
		{"cross-site POST even with the token", req{"POST", "/snapshot", host, "http://evil.example", "", bearer}, 403},
		{"same-site is another origin", req{"POST", "/snapshot", host, "http://127.0.0.1:8080", "same-site", bearer}, 403},
		{"null origin", req{"POST", "/snapshot", host, "null", "", bearer}, 403},
		{"Sec-Fetch-Site alone", req{"POST", "/snapshot", host, "", "cross-site", bearer}, 403},
		{"typed in the address bar", req{"GET", "/metrics", host, "", "none", ""}, 200},
		{"rebound host name", req{"GET", "/metrics", "evil.example:7704", "", "", ""}, 403},
		{"rebound host name with token", req{"POST", "/snapshot", "evil.example:7704", "http://evil.example:7704", "", bearer}, 403},
		{"subdomain of localhost", req{"GET", "/metrics", "evil.localhost:7704", "", "", ""}, 403},
		{"IPv6 loopback", req{"GET", "/metrics", "[::1]:7704", "", "", ""}, 200},
		{"another IP address", req{"GET", "/metrics", "10.1.2.3:7704", "", "", ""}, 200},
		{"localhost with a dot", req{"GET", "/metrics", "LocalHost.:7704", "", "", ""}, 200},
		{"HTTP/1.0 without Host", req{"GET", "/metrics", "", "", "", ""}, 200},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			w, reached := ca.req.do(g)
			require.Equal(t, ca.code, w.Code, w.Body.String())
			require.Equal(t, ca.code == 200, reached)
			if ca.code != 200 {
				var body map[string]string
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
				require.NotEmpty(t, body["error"])
				require.NotEmpty(t, body["reason"])
				require.NotContains(t, w.Body.String(), tok, "an answer never shows the token")
			}
			if ca.code == 401 {
				require.Equal(t, `Bearer realm="framehub"`, w.Header().Get("WWW-Authenticate"))
			}
		})
	}

	w, _ := req{"POST", "/snapshot", host, "", "", ""}.do(g)
	require.Contains(t, w.Body.String(), "POST /snapshot needs the admin token: send 'Authorization: Bearer \\u003ctoken\\u003e' with the token of "+g.TokenFile())
	w, _ = req{"GET", "/logs", host, "", "", ""}.do(g)
	require.Contains(t, w.Body.String(), "-admin-public opens GET endpoints to everyone")
	w, _ = req{"GET", "/metrics", "evil.example:7704", "", "", ""}.do(g)
	require.Contains(t, w.Body.String(), `Host \"evil.example:7704\" is not this daemon's address`)
}

func TestGuardNamedHostAndPublic(t *testing.T) {
	g, tok := testGuard(t, "camera-7.lan:7701", true)
	for _, ca := range []struct {
		req
		code int
	}{
		{req{"GET", "/consumers", "camera-7.lan:7701", "", "", ""}, 200}, // -admin-public
		{req{"GET", "/consumers", "CAMERA-7.LAN", "", "", ""}, 200},      // names are case-insensitive
		{req{"POST", "/snapshot", "camera-7.lan:7701", "", "", ""}, 401}, // POST always needs the token
		{req{"POST", "/snapshot", "camera-7.lan:7701", "", "", "Bearer " + tok}, 200},
		{req{"GET", "/consumers", "camera-8.lan:7701", "", "", ""}, 403},
	} {
		w, _ := ca.req.do(g)
		require.Equal(t, ca.code, w.Code, "%+v: %s", ca.req, w.Body.String())
	}
	g, _ = testGuard(t, "0.0.0.0:7701", false)
	w, _ := req{"GET", "/metrics", "0.0.0.0:7701", "", "", ""}.do(g)
	require.Equal(t, 200, w.Code, "an IP address")
	w, _ = req{"GET", "/metrics", "camera-7.lan:7701", "", "", ""}.do(g)
	require.Equal(t, 403, w.Code, "a wildcard listener names no host: use an IP address or localhost")
}

func TestGuardUnixAndHostGuard(t *testing.T) {
	g, tok := testGuard(t, "unix:/run/x.sock", false)
	w, _ := req{"GET", "/metrics", "whatever-the-client-says", "", "", ""}.do(g)
	require.Equal(t, 200, w.Code, "no browser reaches a Unix socket: any Host")
	w, _ = req{"POST", "/record/event", "framehub", "", "", ""}.do(g)
	require.Equal(t, 401, w.Code)
	w, _ = req{"POST", "/record/event", "framehub", "", "", "Bearer " + tok}.do(g)
	require.Equal(t, 200, w.Code)
	w, _ = req{"POST", "/record/event", "framehub", "http://evil.example", "", "Bearer " + tok}.do(g)
	require.Equal(t, 403, w.Code, "Origin is still checked")

	h := HostGuard("127.0.0.1:7703")
	w, _ = req{"GET", "/metrics", "127.0.0.1:7703", "", "", ""}.do(h)
	require.Equal(t, 200, w.Code)
	w, _ = req{"GET", "/anything", "127.0.0.1:7703", "", "", ""}.do(h)
	require.Equal(t, 404, w.Code)
	w, _ = req{"GET", "/healthz", "evil.example", "", "", ""}.do(h)
	require.Equal(t, 403, w.Code)
}

func TestTokenFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	path := filepath.Join(dir, "admin.token")
	tok, err := LoadOrCreateToken(path)
	require.NoError(t, err)
	require.Regexp(t, "^[0-9a-f]{64}$", tok)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	fi, err = os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "the directory is made as the sockets' is")
	again, err := LoadOrCreateToken(path)
	require.NoError(t, err)
	require.Equal(t, tok, again, "a restarted daemon keeps the token")
	read, err := ReadToken(path)
	require.NoError(t, err)
	require.Equal(t, tok, read)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 1, "no temporary file left")

	// Daemons starting together agree on one token.
	path2 := filepath.Join(dir, "shared.token")
	toks := make([]string, 8)
	var wg sync.WaitGroup
	for i := range toks {
		wg.Go(func() {
			var err error
			toks[i], err = LoadOrCreateToken(path2)
			require.NoError(t, err)
		})
	}
	wg.Wait()
	for _, tk := range toks {
		require.Equal(t, toks[0], tk)
	}

	require.NoError(t, os.Chmod(path, 0o644))
	_, err = LoadOrCreateToken(path)
	require.ErrorContains(t, err, "has mode 0644, open to other users: chmod 600")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "short"), []byte("abc\n"), 0o600))
	_, err = LoadOrCreateToken(filepath.Join(dir, "short"))
	require.ErrorContains(t, err, "the token has 3 characters, want 32 to 512 on one line")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "two"), []byte(strings.Repeat("a", 40)+"\nb\n"), 0o600))
	_, err = ReadToken(filepath.Join(dir, "two"))
	require.ErrorContains(t, err, "is not printable ASCII")

	require.NoError(t, os.Symlink(path2, filepath.Join(dir, "link")))
	_, err = LoadOrCreateToken(filepath.Join(dir, "link"))
	require.ErrorContains(t, err, "is a symbolic link")

	_, err = NewGuard("127.0.0.1:0", Access{TokenFile: filepath.Join(dir, "short")})
	require.Error(t, err, "a daemon does not start with a bad token file")
}

// TestTokenFileOfAnotherUser: a token file another user wrote would be a
// token they know.
func TestTokenFileOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test gives the token file to another uid (65534) with chown")
	}
	path := filepath.Join(t.TempDir(), "admin.token")
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("k", 64)+"\n"), 0o600))
	require.NoError(t, os.Chown(path, 65534, 65534))
	_, err := LoadOrCreateToken(path)
	require.ErrorContains(t, err, "belongs to uid 65534, not to uid 0 that runs this daemon")
}

func TestDefaultTokenFile(t *testing.T) {
	t.Setenv(TokenFileEnv, "/etc/framehub/token")
	p, err := DefaultTokenFile()
	require.NoError(t, err)
	require.Equal(t, "/etc/framehub/token", p)
	t.Setenv(TokenFileEnv, "")
	if os.Geteuid() == 0 {
		p, err = DefaultTokenFile()
		require.NoError(t, err)
		require.Equal(t, "/run/framehub/admin.token", p)
	}
}

func TestListenUnixMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := Listen("unix:" + path)
	require.NoError(t, err)
	defer ln.Close()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

// FuzzGuard feeds the guard arbitrary requests: it must never panic,
// refuse with 401, 403 or 404 only, and let a request through only when
// the rules allow it.
func FuzzGuard(f *testing.F) {
	for _, s := range []req{
		{"GET", "/metrics", "127.0.0.1:7700", "", "", ""},
		{"POST", "/snapshot", "127.0.0.1:7700", "http://evil.example", "cross-site", ""},
		{"POST", "/record/event", "localhost:7700", "http://localhost:7700", "same-origin", "Bearer x"},
		{"GET", "/logs", "evil.example", "", "", ""},
		{"DELETE", "/healthz", "[::1]:7700", "null", "none", "Bearer "},
		{"GET", "/metrics", "[::1", "http://[::1", "", ""},
		{"GET", "/%2e/metrics", "127.0.0.1.", "HTTP://127.0.0.1:7700/", "same-site", "bearer tok"},
	} {
		f.Add(s.method, s.path, s.host, s.origin, s.site, s.auth, false)
	}
	g, tok := testGuard(f, "127.0.0.1:7700", false)
	pub, _ := testGuard(f, "127.0.0.1:7700", true)
	pub.token = tok
	f.Fuzz(func(t *testing.T, method, path, host, origin, site, auth string, public bool) {
		if strings.HasPrefix(auth, "Bearer TOKEN") {
			auth = "Bearer " + tok + auth[len("Bearer TOKEN"):]
		}
		gd := g
		if public {
			gd = pub
		}
		q := req{method, path, host, origin, site, auth}
		w, reached := q.do(gd)
		if !reached {
			require.Contains(t, []int{401, 403, 404}, w.Code)
			require.NotContains(t, w.Body.String(), tok)
			return
		}
		require.True(t, gd.hostAllowed(host), "Host %q passed", host)
		require.True(t, origin == "" || sameOrigin(origin, host), "Origin %q passed for Host %q", origin, host)
		require.True(t, site == "" || site == "same-origin" || site == "none", "Sec-Fetch-Site %q passed", site)
		safe := method == "GET" || method == "HEAD"
		open := safe && (path == "/metrics" || path == "/healthz")
		require.True(t, open || (safe && public) || auth == "Bearer "+tok, "%+v passed without the token", q)
	})
}

func TestGuardWrapView(t *testing.T) {
	g, _ := testGuard(t, "127.0.0.1:8889", false)
	const host = "127.0.0.1:8889"
	cases := []struct {
		name                       string
		method, host, origin, site string
		code                       int
	}{
		{"GET without a token", "GET", host, "", "", 0},
		{"GET from another site's <img>", "GET", host, "", "cross-site", 0},
		{"GET through DNS rebinding", "GET", "evil.example:8889", "", "", http.StatusForbidden},
		{"WHEP offer of the page", "POST", host, "http://" + host, "same-origin", 0},
		{"WHEP offer without browser headers", "POST", "localhost:8889", "", "", 0},
		{"WHEP offer of another site", "POST", host, "http://evil.example", "cross-site", http.StatusForbidden},
		{"WHEP offer, cross-site fetch metadata", "POST", host, "", "cross-site", http.StatusForbidden},
		{"WHEP offer through DNS rebinding", "POST", "evil.example:8889", "http://evil.example:8889", "same-origin", http.StatusForbidden},
	}
	for _, c := range cases {
		reached := false
		h := g.WrapView(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
		r := httptest.NewRequest(c.method, "http://"+host+"/cam/whep", nil)
		r.Host = c.host
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.site != "" {
			r.Header.Set("Sec-Fetch-Site", c.site)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if c.code == 0 {
			require.True(t, reached, c.name)
			continue
		}
		require.False(t, reached, c.name)
		require.Equal(t, c.code, w.Code, c.name)
		require.Contains(t, w.Body.String(), "reason", c.name)
	}
}
