package testutil

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Background is a function running on its own goroutine until stopped,
// such as the Run method of a server or pipeline under test.
type Background struct {
	done chan struct{} // closed when the function returned
	err  error         // what it returned, once done is closed
	stop func()
}

// RunBackground runs run on a goroutine with a context that Stop cancels;
// Stop then requires run to return nil within timeout. Stop runs at
// cleanup too, so the caller need not call it; what run uses (a server it
// serves, a pipeline) must be closed after it returned: register that with
// t.Cleanup before calling RunBackground, as cleanups run last registered
// first. what names run in messages.
func RunBackground(t testing.TB, what string, timeout time.Duration, run func(context.Context) error) *Background {
	ctx, cancel := context.WithCancel(context.Background())
	b := &Background{done: make(chan struct{})}
	go func() {
		b.err = run(ctx)
		close(b.done)
	}()
	var once sync.Once
	b.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-b.done:
				require.NoError(t, b.err, what)
			case <-time.After(timeout):
				t.Errorf("%s did not return within %v", what, timeout)
			}
		})
	}
	t.Cleanup(b.stop)
	return b
}

// Done is closed when the function returned, by itself or after Stop.
func (b *Background) Done() <-chan struct{} { return b.done }

// Err returns what the function returned, once Done is closed.
func (b *Background) Err() error {
	<-b.done
	return b.err
}

// Stop cancels the function's context and waits for it to return (see
// RunBackground). Only the first call does anything.
func (b *Background) Stop() { b.stop() }
