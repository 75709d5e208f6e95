package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/framehub/framehub/internal/admin"
)

// The producer's consumers, for the page: read from the producer's admin
// API (GET /consumers, with the admin token of the group) when the camera
// names it (Camera.Admin). Only each consumer's name, stream and counters
// are passed on: the views are open, and the pids, uids and gids that
// /consumers also gives are what the admin model keeps behind the token.

// ConsumerJSON is one consumer of a camera's producer in /api/cameras.
type ConsumerJSON struct {
	Name      string `json:"name"`
	Stream    string `json:"stream"`
	Delivered uint64 `json:"delivered"`
	Dropped   uint64 `json:"dropped"` // frames the producer skipped for it (budget or full socket)
}

// consumersTTL is how long one answer of the producer is reused: every
// open page asks every 2 s.
const consumersTTL = time.Second

// producerAdmin reads a producer's consumers.
type producerAdmin struct {
	addr, tokenFile string
	hc              *http.Client

	mu      sync.Mutex
	at      time.Time
	last    []ConsumerJSON
	lastErr error
}

func newProducerAdmin(addr, tokenFile string) *producerAdmin {
	tr := &http.Transport{MaxIdleConns: 1, IdleConnTimeout: 30 * time.Second}
	if sock, ok := strings.CutPrefix(addr, "unix:"); ok {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		addr = "unix:" + sock
	}
	return &producerAdmin{addr: addr, tokenFile: tokenFile, hc: &http.Client{Transport: tr, Timeout: 2 * time.Second}}
}

// consumers returns the producer's consumers, at most consumersTTL old.
func (p *producerAdmin) consumers(ctx context.Context) ([]ConsumerJSON, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.at) < consumersTTL {
		return p.last, p.lastErr
	}
	p.last, p.lastErr = p.fetch(ctx)
	p.at = time.Now()
	return p.last, p.lastErr
}

func (p *producerAdmin) fetch(ctx context.Context) ([]ConsumerJSON, error) {
	tok, err := admin.ReadToken(p.tokenFile)
	if err != nil {
		return nil, err
	}
	base := "http://" + p.addr
	if strings.HasPrefix(p.addr, "unix:") {
		base = "http://producer" // any host: the socket is the address
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/consumers", nil)
	if err != nil {
		return nil, fmt.Errorf("producer admin %s: %w", p.addr, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("producer admin %s: %w", p.addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("producer admin %s: %w", p.addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("producer admin %s: GET /consumers: %s", p.addr, resp.Status)
	}
	var all []struct {
		Name          string `json:"name"`
		Stream        string `json:"stream"`
		Delivered     uint64 `json:"delivered"`
		SkippedBudget uint64 `json:"skipped_budget"`
		SkippedSocket uint64 `json:"skipped_socket"`
	}
	if err := json.Unmarshal(body, &all); err != nil {
		return nil, fmt.Errorf("producer admin %s: GET /consumers: %w", p.addr, err)
	}
	out := make([]ConsumerJSON, len(all))
	for i, c := range all {
		out[i] = ConsumerJSON{Name: c.Name, Stream: c.Stream, Delivered: c.Delivered, Dropped: c.SkippedBudget + c.SkippedSocket}
	}
	return out, nil
}

// close releases the idle connection.
func (p *producerAdmin) close() { p.hc.CloseIdleConnections() }
