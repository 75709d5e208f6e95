package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/supervisor"
)

// tokenFlag defines -token-file on fs.
func tokenFlag(fs *flag.FlagSet) *string {
	return fs.String("token-file", "", "the daemons' admin token file (default $"+admin.TokenFileEnv+", else /run/framehub/"+
		admin.TokenFileName+" for root, $XDG_RUNTIME_DIR/framehub/"+admin.TokenFileName+" for other users)")
}

// loadToken reads the admin token of file ("" for the default), or says
// why there is none.
func loadToken(file string) (string, error) {
	if file == "" {
		var err error
		if file, err = admin.DefaultTokenFile(); err != nil {
			return "", err
		}
	}
	return admin.ReadToken(file)
}

// daemonAPI reaches one daemon's admin API, at a host:port or unix:/path,
// sending the admin token when framehubctl could read it.
type daemonAPI struct {
	what, addr string
	hc         *http.Client
	base       string
	token      string
	tokenErr   error // why there is no token
}

func newDaemonAPI(what, addr, tokenFile string) *daemonAPI {
	d := &daemonAPI{what: what, addr: addr, hc: &http.Client{Timeout: 5 * time.Second}, base: "http://" + addr}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		d.hc.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", path)
		}}
		d.base = "http://localhost"
	}
	d.token, d.tokenErr = loadToken(tokenFile)
	return d
}

// do sends a request; errors say which daemon could not be reached, and a
// refusal for want of the token says why framehubctl had none.
func (d *daemonAPI) do(ctx context.Context, method, path string, body io.Reader, contentType string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		return nil, fmt.Errorf("cannot reach %s at %s: %w (is it running?)", d.what, d.addr, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s at %s: read %s: %w", d.what, d.addr, path, err)
	}
	if resp.StatusCode/100 != 2 {
		err := fmt.Errorf("%s at %s: %s %s: %s: %s", d.what, d.addr, method, path, resp.Status, strings.TrimSpace(string(out)))
		if resp.StatusCode == http.StatusUnauthorized && d.tokenErr != nil {
			err = fmt.Errorf("%w\nframehubctl sent no token: %v (run framehubctl as the daemon's user or root, or give -token-file)",
				err, d.tokenErr)
		}
		return nil, err
	}
	return out, nil
}

// get fetches path.
func (d *daemonAPI) get(ctx context.Context, path string) ([]byte, error) {
	return d.do(ctx, http.MethodGet, path, nil, "")
}

// cameraFlags are -camera and -supervisor of the commands that talk to a
// per-camera daemon (snapshot, record): with -camera, the daemon's address
// is the one the supervisor's /status gives its process <process>.<camera>.
type cameraFlags struct {
	camera, supervisor *string
}

func addCameraFlags(fs *flag.FlagSet, process string) cameraFlags {
	return cameraFlags{
		camera: fs.String("camera", "", "the camera whose "+process+" to ask, in a group config with cameras: its address (process "+process+
			".<camera>) comes from the supervisor's /status; -addr is then not used"),
		supervisor: fs.String("supervisor", "127.0.0.1:7700", "framehub-supervisor's admin address, for -camera"),
	}
}

// addr returns the daemon's address: def without -camera, else the
// supervisor's word for the camera's process.
func (f cameraFlags) addr(ctx context.Context, process, def, tokenFile string) (string, error) {
	if *f.camera == "" {
		return def, nil
	}
	body, err := newDaemonAPI("framehub-supervisor", *f.supervisor, tokenFile).get(ctx, "/status")
	if err != nil {
		return "", err
	}
	var st supervisor.StatusResponse
	if err := json.Unmarshal(body, &st); err != nil {
		return "", fmt.Errorf("framehub-supervisor at %s: /status: %w", *f.supervisor, err)
	}
	var names []string
	for _, c := range st.Cameras {
		names = append(names, c.Name)
	}
	name := process + "." + *f.camera
	for _, p := range st.Processes {
		if p.Name == name {
			if p.Admin == "" {
				return "", fmt.Errorf("framehub-supervisor at %s: process %s has no admin address in its config", *f.supervisor, name)
			}
			return p.Admin, nil
		}
	}
	return "", fmt.Errorf("framehub-supervisor at %s runs no process %s (cameras: %s)", *f.supervisor, name, strings.Join(names, ", "))
}
