package testutil

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// HTTPDo sends a request to the admin API at addr, "host:port" or
// "unix:/path/to.sock" (the daemons' admin APIs listen on either), and
// returns the status code and the body. body may be nil. The request ends
// with ctx, which bounds reading the body too. Nothing to clean up: the
// connection is closed before it returns, so that descriptor counts of the
// daemon are not disturbed by an idle keep-alive connection.
func HTTPDo(ctx context.Context, addr, method, path string, body []byte) (int, []byte, error) {
	return HTTPDoToken(ctx, addr, method, path, body, "")
}

// HTTPDoToken is HTTPDo with the admin token token sent as a bearer
// token ("" sends none): the daemons' endpoints other than /metrics and
// /healthz need it (internal/admin).
func HTTPDoToken(ctx context.Context, addr, method, path string, body []byte, token string) (int, []byte, error) {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	base := "http://" + addr
	if sock, ok := strings.CutPrefix(addr, "unix:"); ok {
		base = "http://admin" // any host: the socket is the address
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// ParseMetrics parses a Prometheus text exposition (GET /metrics) into
// samples by name and labels, e.g.
// `framehub_snapshot_failures_total{reason="storage_busy"}` → 2. A line
// whose value does not parse is left out and reported by the error (the
// first such line); the other samples are returned all the same, so that a
// caller polling for one metric may ignore the error.
func ParseMetrics(body []byte) (map[string]float64, error) {
	out := map[string]float64{}
	var firstErr error
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("metrics line %q: %w", line, err)
			}
			continue
		}
		out[line[:i]] = v
	}
	return out, firstErr
}
