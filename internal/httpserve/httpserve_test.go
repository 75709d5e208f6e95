package httpserve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestServeUntilContextEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan [2]error, 1)
	go func() {
		s, sh := Serve(ctx, srv, ln, time.Second)
		done <- [2]error{s, sh}
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Fatalf("body %q, want ok", body)
	}
	cancel()
	select {
	case errs := <-done:
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("Serve after its context ended = %v, %v; want nil, nil", errs[0], errs[1])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("the listener is still open after Serve returned")
	}
}

// A request still running when the grace ends is Shutdown's error, not
// Serve's.
func TestServeGraceExceeded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(started)
		<-release
	})}
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		if resp, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
			resp.Body.Close()
		}
	}()
	go func() { <-started; cancel() }()
	serveErr, shutdownErr := Serve(ctx, srv, ln, 50*time.Millisecond)
	if serveErr != nil || !errors.Is(shutdownErr, context.DeadlineExceeded) {
		t.Fatalf("Serve = %v, %v; want nil, context.DeadlineExceeded", serveErr, shutdownErr)
	}
}

// A listener that fails is Serve's error, at once.
func TestServeFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	serveErr, shutdownErr := Serve(context.Background(), &http.Server{}, ln, time.Second)
	if serveErr == nil || shutdownErr != nil {
		t.Fatalf("Serve on a closed listener = %v, %v; want an error, nil", serveErr, shutdownErr)
	}
}
