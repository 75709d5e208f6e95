package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair returns a connected loopback TCP pair: a wrapped client and the
// plain server side.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.FailNow()
	}
	w := Wrap(c)
	if _, ok := w.(*Conn); !ok {
		t.Fatalf("Wrap(*net.TCPConn) = %T, want *rawio.Conn", w)
	}
	t.Cleanup(func() { w.Close(); s.Close() })
	return w, s
}

func TestConnRoundTrip(t *testing.T) {
	c, s := pair(t)
	// More than a socket buffer's worth each way, so that both Read and
	// Write have to wait in the netpoller.
	msg := bytes.Repeat([]byte("framehub"), 1<<17)
	go func() {
		if _, err := s.Write(msg); err != nil {
			t.Error(err)
		}
	}()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("read bytes differ from those written")
	}
	echo := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(msg))
		_, err := io.ReadFull(s, b)
		if err != nil {
			t.Error(err)
		}
		echo <- b
	}()
	if n, err := c.Write(msg); err != nil || n != len(msg) {
		t.Fatalf("write = %d, %v; want %d, nil", n, err, len(msg))
	}
	if !bytes.Equal(<-echo, msg) {
		t.Fatal("written bytes differ from those read")
	}
	s.Close()
	if n, err := c.Read(got); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed = %d, %v; want 0, io.EOF", n, err)
	}
}

func TestConnDeadlineAndClose(t *testing.T) {
	c, _ := pair(t)
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 16))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v; want a timeout wrapping os.ErrDeadlineExceeded", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("read error %T, want *net.OpError with Op read", err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 16))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read interrupted by Close: %v; want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a pending Read")
	}
}

// An eventfd read through an os.File: what a GStreamer appsink's watch
// waits on.
func TestReadEventfd(t *testing.T) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "eventfd")
	rf, err := NewFile(f)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		one := [8]byte{3}
		if _, err := unix.Write(fd, one[:]); err != nil {
			t.Error(err)
		}
	}()
	var b [8]byte
	if n, err := rf.Read(b[:]); n != 8 || err != nil || b[0] != 3 {
		t.Fatalf("eventfd read = %d, %v, %v; want 8, nil, count 3", n, err, b)
	}
	done := make(chan error, 1)
	go func() {
		_, err := rf.Read(b[:])
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	f.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("read interrupted by Close: %v; want os.ErrClosed", err)
	}
	if _, err := rf.Read(b[:]); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("read after Close: %v; want os.ErrClosed", err)
	}
}
