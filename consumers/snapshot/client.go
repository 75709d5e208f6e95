package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Client talks to a framehub-snapshot daemon's admin API (framehubctl,
// tests, benchmarks).
type Client struct {
	addr  string
	base  string
	hc    *http.Client
	token string
}

// NewClient returns a client of the daemon at addr ("host:port" or
// "unix:/path").
func NewClient(addr string) *Client {
	tr := &http.Transport{MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second}
	base := "http://" + addr
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		base = "http://localhost"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
	}
	return &Client{addr: addr, base: base, hc: &http.Client{Transport: tr}}
}

// SetToken sets the admin token sent with every request ("Authorization:
// Bearer"), which the daemon requires of everything but /metrics and
// /healthz (internal/admin). Call it before the first request.
func (c *Client) SetToken(token string) { c.token = token }

// Close closes the client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// ReachError means the daemon could not be reached at all (not running,
// wrong address).
type ReachError struct {
	Addr string
	Err  error
}

func (e *ReachError) Error() string {
	msg := e.Err.Error()
	var errno syscall.Errno
	if errors.As(e.Err, &errno) {
		msg = errno.Error() // "connection refused", not the whole dial chain
	}
	return fmt.Sprintf("cannot reach framehub-snapshot at %s: %s", e.Addr, msg)
}

func (e *ReachError) Unwrap() error { return e.Err }

// APIError is an error answer of the daemon. It wraps the matching
// sentinel (ErrBusy, ErrNoFrame...) so errors.Is works across the API.
type APIError struct {
	Code   int    // HTTP status
	Short  string // "storage busy", "no frame"...
	Reason string // the daemon's explanation
}

func (e *APIError) Error() string {
	return fmt.Sprintf("framehub-snapshot answered HTTP %d: %s", e.Code, e.Reason) // Reason starts with Short's meaning
}

// Unwrap returns the sentinel error of the answer, if any.
func (e *APIError) Unwrap() error {
	for _, s := range []error{ErrInvalid, ErrUnknown, ErrBusy, ErrNotConnected, ErrStopping, ErrNoFrame} {
		if code, short := errorCode(s); code == e.Code && short == e.Short {
			return s
		}
	}
	return nil
}

// Take asks for a snapshot. With wantJPEG the JPEG is returned too.
func (c *Client) Take(ctx context.Context, req Request, wantJPEG bool) (Status, []byte, error) {
	q := url.Values{}
	set := func(k string, v int64) {
		if v != 0 {
			q.Set(k, strconv.FormatInt(v, 10))
		}
	}
	set("quality", int64(req.Quality))
	set("scale", int64(req.Scale))
	set("width", int64(req.Width))
	set("height", int64(req.Height))
	set("after", req.After)
	if req.Encoder != "" {
		q.Set("encoder", req.Encoder)
	}
	q.Set("format", "json")
	if wantJPEG {
		q.Set("format", "jpeg")
	}
	resp, err := c.do(ctx, http.MethodPost, "/snapshot?"+q.Encode())
	if err != nil {
		return Status{}, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Status{}, nil, fmt.Errorf("framehub-snapshot at %s: read answer: %w", c.addr, err)
	}
	if err := answerError(resp, body); err != nil {
		return Status{}, nil, err
	}
	var st Status
	if !wantJPEG {
		if err := json.Unmarshal(body, &st); err != nil {
			return Status{}, nil, fmt.Errorf("framehub-snapshot at %s: bad status: %w", c.addr, err)
		}
		return st, nil, nil
	}
	if err := json.Unmarshal([]byte(resp.Header.Get("X-Snapshot-Status")), &st); err != nil {
		return Status{}, nil, fmt.Errorf("framehub-snapshot at %s: bad X-Snapshot-Status header: %w", c.addr, err)
	}
	return st, body, nil
}

// Status returns the status of snapshot id; with wait > 0 the daemon
// answers once it is durable or failed, or after wait.
func (c *Client) Status(ctx context.Context, id string, wait time.Duration) (Status, error) {
	path := "/snapshot/" + url.PathEscape(id)
	if wait > 0 {
		path += "?wait=" + wait.String()
	}
	var st Status
	return st, c.getJSON(ctx, path, &st)
}

// Health returns the daemon's health (also when it is not OK).
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.getJSON(ctx, "/healthz", &h)
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == http.StatusServiceUnavailable && h.Producer != "" {
		err = nil
	}
	return h, err
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("framehub-snapshot at %s: read answer: %w", c.addr, err)
	}
	_ = json.Unmarshal(body, v)
	return answerError(resp, body)
}

func (c *Client) do(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, &ReachError{Addr: c.addr, Err: op}
		}
		return nil, fmt.Errorf("framehub-snapshot at %s: %w", c.addr, err)
	}
	return resp, nil
}

func answerError(resp *http.Response, body []byte) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	var ae apiError
	if json.Unmarshal(body, &ae) != nil || ae.Error == "" {
		ae = apiError{Error: http.StatusText(resp.StatusCode), Reason: strings.TrimSpace(string(body))}
	}
	return &APIError{Code: resp.StatusCode, Short: ae.Error, Reason: ae.Reason}
}
