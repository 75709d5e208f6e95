package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/websocket"

	"github.com/framehub/framehub/internal/testutil"
)

// A small client of the Chrome DevTools protocol: enough to open a page,
// evaluate JavaScript in it and take screenshots. One request at a time;
// events are read and dropped.

// browser is a headless Chromium process.
type browser struct {
	*testutil.Daemon
	port string // the DevTools HTTP port
}

var devtoolsLine = regexp.MustCompile(`DevTools listening on ws://127\.0\.0\.1:(\d+)/`)

// startBrowser runs Chromium headless with the DevTools protocol on a port
// it picks. Autoplay needs no gesture (the page's <video> is muted
// anyway); --no-sandbox because the tests may run as root.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	cmd := exec.Command(chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--autoplay-policy=no-user-gesture-required", "--no-first-run", "--no-default-browser-check", "--mute-audio",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--remote-allow-origins=http://127.0.0.1", "--user-data-dir="+t.TempDir(),
		"--window-size=1280,900", "about:blank")
	var port string
	d := testutil.StartDaemon(t, "chromium", cmd, waitTimeout, func(line string) bool {
		if m := devtoolsLine.FindStringSubmatch(line); m != nil {
			port = m[1]
			return true
		}
		return false
	})
	return &browser{Daemon: d, port: port}
}

// page is one browser tab.
type page struct {
	t      *testing.T
	ws     *websocket.Conn
	id     int
	closeF func()
}

// close closes the tab (also done at cleanup).
func (p *page) close() { p.closeF() }

// open opens a new tab on url.
func (b *browser) open(t *testing.T, url string) *page {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, "http://127.0.0.1:"+b.port+"/json/new?"+url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var target struct {
		ID, WebSocketDebuggerURL string
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&target))
	require.NotEmpty(t, target.WebSocketDebuggerURL, "DevTools /json/new answered %s", resp.Status)
	ws, err := websocket.Dial(target.WebSocketDebuggerURL, "", "http://127.0.0.1")
	require.NoError(t, err)
	ws.MaxPayloadBytes = 64 << 20 // screenshots
	var once sync.Once
	p := &page{t: t, ws: ws, closeF: func() {
		once.Do(func() {
			_ = ws.Close()
			if resp, err := http.Get("http://127.0.0.1:" + b.port + "/json/close/" + target.ID); err == nil {
				resp.Body.Close()
			}
		})
	}}
	t.Cleanup(p.close)
	p.waitFor(`document.readyState === "complete" && location.href !== "about:blank"`, `document.readyState`, waitTimeout)
	return p
}

// call sends a DevTools command and returns its result.
func (p *page) call(method string, params any) json.RawMessage {
	p.t.Helper()
	p.id++
	id := p.id
	require.NoError(p.t, websocket.JSON.Send(p.ws, map[string]any{"id": id, "method": method, "params": params}))
	_ = p.ws.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		require.NoError(p.t, websocket.JSON.Receive(p.ws, &msg), "DevTools %s", method)
		if msg.ID != id {
			continue // an event
		}
		if msg.Error != nil {
			p.t.Fatalf("DevTools %s: %s", method, msg.Error.Message)
		}
		return msg.Result
	}
}

// eval evaluates expr in the page (awaiting a promise) into v.
func (p *page) eval(expr string, v any) {
	p.t.Helper()
	res := p.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true})
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	require.NoError(p.t, json.Unmarshal(res, &r))
	if r.ExceptionDetails != nil {
		p.t.Fatalf("%s: %s %s", expr, r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if v != nil {
		require.NoError(p.t, json.Unmarshal(r.Result.Value, v), "%s = %s", expr, r.Result.Value)
	}
}

// waitFor evaluates the boolean expr until it is true; it fails the test
// after timeout, showing what diag evaluates to.
func (p *page) waitFor(expr, diag string, timeout time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		var ok bool
		p.eval("Boolean("+expr+")", &ok)
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			var d any
			p.eval(diag, &d)
			p.t.Fatalf("not true within %v: %s\n%s = %v", timeout, expr, diag, d)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// screenshot returns a PNG of the element matched by selector.
func (p *page) screenshot(selector string) []byte {
	p.t.Helper()
	var rect struct{ X, Y, Width, Height float64 }
	p.eval(fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect();
		return {x: r.x, y: r.y, width: r.width, height: r.height}; })()`, selector), &rect)
	require.Positive(p.t, rect.Width, "%s has no size", selector)
	res := p.call("Page.captureScreenshot", map[string]any{"format": "png",
		"clip": map[string]any{"x": rect.X, "y": rect.Y, "width": rect.Width, "height": rect.Height, "scale": 1}})
	var r struct {
		Data string `json:"data"`
	}
	require.NoError(p.t, json.Unmarshal(res, &r))
	png, err := base64.StdEncoding.DecodeString(r.Data)
	require.NoError(p.t, err)
	return png
}

// chromium is the browser binary: Debian's chromium (make deps installs
// it), or $FRAMEHUB_CHROMIUM.
var chromium = func() string {
	if c := os.Getenv("FRAMEHUB_CHROMIUM"); c != "" {
		return c
	}
	return "chromium"
}()

func needBrowser(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(chromium); err != nil {
		t.Skipf("%s is not installed (Debian package chromium; make deps installs it): %v", chromium, err)
	}
	if _, err := exec.LookPath("gst-launch-1.0"); err != nil {
		t.Skipf("gst-launch-1.0 is not installed (Debian package gstreamer1.0-tools): %v", err)
	}
}
