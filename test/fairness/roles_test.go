package fairness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/sdk"
)

// The roles the test binary plays when re-executed as a child process
// (testutil.HelperCommand; TestMain dispatches): a healthy consumer and the
// attackers. Each reads its parameters from FH_* variables, writes JSON
// lines (report) on stdout and runs until its stdin closes (the parent
// ends) or it is killed.

// report is one line a role writes.
type report struct {
	Role       string `json:"role"`
	Event      string `json:"event"` // "progress", "welcome", "reject", "bye", "admitted", "error"
	MonoNS     int64  `json:"mono_ns,omitempty"`
	Frames     uint64 `json:"frames,omitempty"`
	Mismatches uint64 `json:"mismatches,omitempty"`
	Dropped    uint64 `json:"dropped,omitempty"`
	Budget     uint32 `json:"budget,omitempty"`
	HoldMS     uint32 `json:"hold_ms,omitempty"`
	Code       string `json:"code,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Sent       uint64 `json:"sent,omitempty"`
	Err        string `json:"err,omitempty"`
}

type emitter struct {
	mu   sync.Mutex
	enc  *json.Encoder
	role string
}

func (e *emitter) emit(r report) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r.Role = e.role
	if r.MonoNS == 0 {
		r.MonoNS = time.Now().UnixNano()
	}
	_ = e.enc.Encode(r)
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil {
		return v
	}
	return def
}

// roles are the helper processes of this package, for testutil.RunHelper.
func roles() map[string]func() int {
	m := make(map[string]func() int)
	for _, r := range []string{"healthy", "holder", "greedy", "silent", "pinger"} {
		m[r] = func() int { return runRole(r) }
	}
	return m
}

// runRole runs role and returns the exit code.
func runRole(role string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the parent closes our stdin when it is done with us
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	out := &emitter{enc: json.NewEncoder(os.Stdout), role: role}
	sock := os.Getenv("FH_SOCKET")
	switch role {
	case "healthy":
		healthy(ctx, out, sock)
	case "holder":
		holder(ctx, out, sock)
	case "greedy":
		greedy(ctx, out, sock)
	case "silent":
		silent(ctx, out, sock)
	case "pinger":
		pinger(ctx, out, sock)
	default:
		out.emit(report{Event: "error", Err: "unknown role " + role})
		return 2
	}
	return 0
}

// healthy consumes the raw stream with the default budget, verifies every
// frame's stamp, releases each at once, and reports its counts twice a
// second.
func healthy(ctx context.Context, out *emitter, sock string) {
	c, err := sdk.Dial(ctx, sock, sdk.Options{Name: "healthy", MaxInFlight: 4, Logger: quietLogger()})
	if err != nil {
		out.emit(report{Event: "error", Err: err.Error()})
		return
	}
	defer c.Close()
	out.emit(report{Event: "welcome", Budget: uint32(c.Subscription().MaxInFlight)})
	var frames, mismatches, dropped atomic.Uint64
	go func() {
		tk := time.NewTicker(500 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				out.emit(report{Event: "progress", Frames: frames.Load(), Mismatches: mismatches.Load(), Dropped: dropped.Load()})
			}
		}
	}()
	width := c.Caps().Width
	for {
		f, err := c.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				out.emit(report{Event: "error", Err: err.Error()})
			}
			return
		}
		if err := producertest.VerifyFrame(f, width); err != nil {
			mismatches.Add(1)
		}
		dropped.Add(uint64(f.Dropped()))
		frames.Add(1)
		f.Release()
	}
}

// holder subscribes with FH_BUDGET and FH_HOLD_MS, keeps every frame it is
// given and never releases one; when the producer ends its session
// (eviction) it says so and, unless FH_RECONNECT=0, subscribes again with
// the same name.
func holder(ctx context.Context, out *emitter, sock string) {
	name := os.Getenv("FH_NAME")
	for ctx.Err() == nil {
		c, err := sdk.Dial(ctx, sock, sdk.Options{Name: name, MaxInFlight: envInt("FH_BUDGET", 0),
			MaxHold: time.Duration(envInt("FH_HOLD_MS", 0)) * time.Millisecond, Logger: quietLogger()})
		var rej *sdk.RejectError
		switch {
		case errors.As(err, &rej):
			out.emit(report{Event: "reject", Code: rej.Code.String(), Reason: rej.Reason})
			select { // a careless client retries soon
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		case err != nil:
			if ctx.Err() == nil {
				out.emit(report{Event: "error", Err: err.Error()})
			}
			return
		}
		sub := c.Subscription()
		out.emit(report{Event: "welcome", Budget: uint32(sub.MaxInFlight), HoldMS: uint32(sub.MaxHold.Milliseconds())})
		var held []*sdk.Frame
		for {
			f, err := c.Next(ctx)
			if err != nil {
				var bye *sdk.ByeError
				if errors.As(err, &bye) {
					out.emit(report{Event: "bye", Code: bye.Code.String(), Reason: bye.Reason, Frames: uint64(len(held))})
				}
				break
			}
			held = append(held, f) // never released
		}
		_ = c.Close()
		if os.Getenv("FH_RECONNECT") == "0" {
			<-ctx.Done()
			return
		}
	}
}

// rawHello connects and sends h; it returns the connection and the answer.
func rawHello(ctx context.Context, sock string, h *ipc.Hello) (*fdpass.Conn, ipc.Message, error) {
	conn, err := fdpass.Dial(ctx, sock)
	if err != nil {
		return nil, nil, err
	}
	codec := ipc.NewCodec()
	b, err := codec.Encode(h)
	if err == nil {
		err = conn.Send(b, nil)
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	m, err := recvMsg(conn, codec, make([]byte, ipc.MaxMessageSize), 5*time.Second)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, m, nil
}

// recvMsg reads one message. A producer that closes a connection with our
// packets unread makes the kernel report ECONNRESET once, before the
// packets it queued for us (its Bye): read on past it.
func recvMsg(conn *fdpass.Conn, codec *ipc.Codec, buf []byte, timeout time.Duration) (ipc.Message, error) {
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	n, fds, err := conn.Recv(buf)
	if errors.Is(err, syscall.ECONNRESET) {
		n, fds, err = conn.Recv(buf)
	}
	fdpass.CloseFDs(fds)
	if err != nil {
		return nil, err
	}
	return codec.Decode(buf[:n])
}

// greedy asks for the largest budget and hold the wire can carry, takes
// every frame it is given and never releases one.
func greedy(ctx context.Context, out *emitter, sock string) {
	conn, m, err := rawHello(ctx, sock, &ipc.Hello{Major: ipc.VersionMajor, Minor: ipc.VersionMinor, Name: "greedy",
		Stream: "raw", MaxInFlight: 1<<32 - 1, MaxHoldMS: 1<<32 - 1})
	if err != nil {
		out.emit(report{Event: "error", Err: err.Error()})
		return
	}
	defer conn.Close()
	w, ok := m.(*ipc.Welcome)
	if !ok {
		out.emit(report{Event: "error", Err: fmt.Sprintf("want a Welcome, got %T %+v", m, m)})
		return
	}
	out.emit(report{Event: "welcome", Budget: w.MaxInFlight, HoldMS: w.MaxHoldMS})
	codec, buf, frames := ipc.NewCodec(), make([]byte, ipc.MaxMessageSize), uint64(0)
	for ctx.Err() == nil {
		m, err := recvMsg(conn, codec, buf, time.Second)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			out.emit(report{Event: "progress", Frames: frames})
			continue
		case err != nil:
			out.emit(report{Event: "error", Err: err.Error()})
			<-ctx.Done()
			return
		}
		switch m := m.(type) {
		case *ipc.Frame:
			frames++
		case *ipc.Bye:
			out.emit(report{Event: "bye", Code: m.Code.String(), Reason: m.Reason, Frames: frames})
			<-ctx.Done()
			return
		}
	}
}

// silent keeps FH_CONNS connections open without ever saying Hello,
// opening another as soon as the producer closes one.
func silent(ctx context.Context, out *emitter, sock string) {
	var opened, rejected, timedOut atomic.Uint64
	var wg sync.WaitGroup
	for range envInt("FH_CONNS", 8) {
		wg.Go(func() {
			codec, buf := ipc.NewCodec(), make([]byte, ipc.MaxMessageSize)
			for ctx.Err() == nil {
				conn, err := fdpass.Dial(ctx, sock)
				if err != nil {
					continue
				}
				opened.Add(1)
				m, err := recvMsg(conn, codec, buf, 30*time.Second)
				if r, ok := m.(*ipc.Reject); ok && err == nil {
					if r.Code == ipc.CodeTooMany {
						rejected.Add(1)
					} else {
						timedOut.Add(1)
					}
				}
				conn.Close()
			}
		})
	}
	tk := time.NewTicker(500 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tk.C:
			out.emit(report{Event: "progress", Sent: opened.Load(), Frames: rejected.Load(), Dropped: timedOut.Load()})
		}
	}
}

// pinger subscribes with the latest policy (a session with a reader of its
// own in the producer) and sends Pings as fast as the socket takes them.
func pinger(ctx context.Context, out *emitter, sock string) {
	conn, m, err := rawHello(ctx, sock, &ipc.Hello{Major: ipc.VersionMajor, Minor: ipc.VersionMinor, Name: "pinger",
		Stream: "raw", MaxInFlight: 1, Policy: ipc.PolicyLatest})
	if err != nil {
		out.emit(report{Event: "error", Err: err.Error()})
		return
	}
	defer conn.Close()
	if _, ok := m.(*ipc.Welcome); !ok {
		out.emit(report{Event: "error", Err: fmt.Sprintf("want a Welcome, got %T %+v", m, m)})
		return
	}
	out.emit(report{Event: "welcome"})
	var sent atomic.Uint64
	go func() {
		codec := ipc.NewCodec()
		ping, _ := codec.Encode(&ipc.Ping{Token: 1})
		for ctx.Err() == nil {
			if conn.Send(ping, nil) != nil {
				return
			}
			sent.Add(1)
		}
	}()
	codec, buf := ipc.NewCodec(), make([]byte, ipc.MaxMessageSize)
	for ctx.Err() == nil {
		m, err := recvMsg(conn, codec, buf, time.Minute)
		if err != nil {
			out.emit(report{Event: "error", Err: err.Error(), Sent: sent.Load()})
			break
		}
		if b, ok := m.(*ipc.Bye); ok {
			out.emit(report{Event: "bye", Code: b.Code.String(), Reason: b.Reason, Sent: sent.Load()})
			break
		}
	}
	<-ctx.Done()
}
